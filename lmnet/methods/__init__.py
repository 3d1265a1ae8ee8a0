"""The methods, one folder each (occupancy_networks' layout): ``autoencoder/`` (the 3D-LMNet point
autoencoder), ``image/`` (Variant I / II: image encoder → latent matching) and ``silhouette/``
(image → cloud from masks alone, Zubić & Liò). Each folder holds its config (defaults, checks,
presets, CLI names), its network with its builder and ``model_config``, its trainer, and what only
it uses, and exposes ``METHOD`` (:class:`lmnet.train.method.Method`). Methods do not import each
other; what two share lives a layer below. :mod:`lmnet.registry` lists them.
"""
