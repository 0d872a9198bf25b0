"""lenet-gpu: LeNet-5 (LeCun et al. 1998) on hand-written CUDA kernels, with a NumPy reference."""
from .backend import (BackendError, get_backend, gpu_available, set_backend, to_cpu, to_gpu)
from .layers import (Activation, AvgPool2D, BatchNorm, Conv2D, Dense, Flatten, MaxPool2D, Pool2D,
                     RBFOutput, Subsampling, c3_table)
from .model import Sequential, TrainingDiverged
from .models import lenet5, lenet5_paper, mlp
from .optim import SGD, Adam
from .predict import pretrained

__version__ = "0.1.0"

__all__ = ["BackendError", "get_backend", "gpu_available", "set_backend", "to_cpu", "to_gpu",
           "Activation", "AvgPool2D", "BatchNorm", "Conv2D", "Dense", "Flatten", "MaxPool2D",
           "Pool2D", "RBFOutput", "Subsampling", "c3_table", "Sequential", "TrainingDiverged", "lenet5", "lenet5_paper", "mlp", "SGD", "Adam",
           "pretrained"]
