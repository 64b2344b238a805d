"""The screening model in plain PyTorch: network, preprocessing, Classifier, training, evaluation, calibration, registry."""
