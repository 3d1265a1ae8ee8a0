"""Published 3D-LMNet weights: readers for the official TensorFlow checkpoints and the PyTorch
port's state dicts, their conversion into lmnet run folders, and the published-file catalogue.

Importable from here (what the notebooks use), named for what they do outside their modules:

- :func:`lookup_published` / :func:`download_published` — :func:`lmnet.weights.pretrained.lookup` /
  :func:`~lmnet.weights.pretrained.download`: a catalogue entry (:class:`Published`); fetch and
  import a published model into run folders;
- :func:`random_official_variables` — :func:`lmnet.weights.official_tf.random_variables`: stand-in
  weights under the official names and shapes;
- :func:`write_tf_checkpoint` — :func:`lmnet.weights.tf_writer.write_checkpoint`: arrays → a
  TensorFlow V2 checkpoint.
"""

from lmnet.weights.official_tf import random_variables as random_official_variables
from lmnet.weights.pretrained import Published
from lmnet.weights.pretrained import download as download_published
from lmnet.weights.pretrained import lookup as lookup_published
from lmnet.weights.tf_writer import write_checkpoint as write_tf_checkpoint

__all__ = ["Published", "lookup_published", "download_published", "random_official_variables", "write_tf_checkpoint"]
