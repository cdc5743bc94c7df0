"""Data: CIFAR-10, Imagenette, synthetic Gaussian mixtures; in-memory sets and batched loaders."""

from dglsim.data.cifar10 import LossyDataWarning, load_cifar10
from dglsim.data.dataset import ImageSet, balanced_subset, first, first_per_class
from dglsim.data.imagenette import load_imagenette
from dglsim.data.loader import BatchLoader, normalize, random_crop_flip
from dglsim.data.root import data_root
from dglsim.data.synthetic import FeatureSet, GaussianMixture

__all__ = [
    "BatchLoader",
    "FeatureSet",
    "GaussianMixture",
    "ImageSet",
    "LossyDataWarning",
    "balanced_subset",
    "first",
    "first_per_class",
    "data_root",
    "load_cifar10",
    "load_imagenette",
    "normalize",
    "random_crop_flip",
]
