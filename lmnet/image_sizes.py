"""The image sizes every layer agrees on, defined once (no dependencies, so the torch-free data
readers can use them): an R2N2 rendering is ``R2N2_IMAGE_SIZE`` px square, and the networks take its
centre ``CROP_SIZE`` px crop, ``[4:-5, 4:-5]`` (``CROP_OFFSET`` rows and columns removed before it;
docs/formats.md#network-input-crop-and-background). :mod:`lmnet.data.inputs` makes the crop;
:mod:`lmnet.camera` projects into it."""

R2N2_IMAGE_SIZE = 137  #: side of an R2N2 rendering, px
CROP_SIZE = 128  #: side of every network input, px
CROP_OFFSET = 4  #: rows / columns of a rendering removed before the network crop
