"""FID and KID (docs/fid.md): Inception-v3 in plain torch and its two published weight layouts
(:mod:`.inception`), lmnet's offline proxy features (:mod:`.proxy_features`), features of many
images (:mod:`.features`), the Fréchet distance and the kernel inception distance (:mod:`.metrics`),
statistics files in convmesh's format (:mod:`.stats`).

A layer below the methods, so that a GAN's training measures its own FID (best.pt by FID) with the
same code as ``lmnet eval fid``.
"""
