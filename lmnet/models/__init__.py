"""Networks: the point autoencoder, the image encoder and the image → point-cloud model (docs/models.md)."""

from lmnet.models.image_encoder import IMAGE_SCALINGS, ImageEncoder, scale_images
from lmnet.models.image_to_pointcloud import VARIANTS, ImageToPointCloud, reparameterize
from lmnet.models.point_ae import PointAutoencoder, PointDecoder, PointEncoder, build_point_autoencoder

__all__ = ["IMAGE_SCALINGS", "ImageEncoder", "scale_images", "VARIANTS", "ImageToPointCloud",
           "reparameterize", "PointAutoencoder", "PointDecoder", "PointEncoder", "build_point_autoencoder"]
