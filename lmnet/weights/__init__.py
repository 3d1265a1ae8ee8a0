"""Published 3D-LMNet weights: readers for the official TensorFlow checkpoints and the PyTorch
port's state dicts, their conversion into lmnet run folders, and the published-file catalogue."""
