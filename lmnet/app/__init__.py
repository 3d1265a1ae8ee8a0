"""``lmnet app``: a web page (Gradio, the ``app`` extra) that turns an uploaded photo into a 3D point
cloud with any image run, shows the mask, the network input and the cloud in a 3D viewer, and
offers it as .ply / .glb / .obj (docs/usage.md#the-web-app).

- :mod:`lmnet.app.reconstruction`: what is computed for one photo, without Gradio;
- :mod:`lmnet.app.ui`: the page and the server (Gradio imported inside its functions).
"""

from lmnet.app.reconstruction import AppRun, Reconstruction, cloud_bytes, display_colours, write_cloud_files
from lmnet.app.ui import build_blocks, serve

__all__ = ["AppRun", "Reconstruction", "cloud_bytes", "display_colours", "write_cloud_files", "build_blocks",
           "serve"]
