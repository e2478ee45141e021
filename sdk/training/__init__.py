"""Training tools (part of layer 4; PyTorch): models, methods and losses, the training loop, checkpoints,
distillation, evaluation, and the torch ``Dataset`` wrappers (``sdk.training.data``) over ``runtime.datasets``.
"""
