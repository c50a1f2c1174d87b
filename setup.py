"""v2xdet: cooperative V2X 3D object detection (MSwin fusion with deformable attention)."""
from setuptools import find_packages, setup

setup(
    name="v2xdet",
    version="0.1.0",
    description="Cooperative-perception library for V2X LiDAR 3D object detection",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["v2xdet", "v2xdet.*"]),
    package_data={"v2xdet": ["py.typed"]},
    python_requires=">=3.10",
    install_requires=[
        "torch>=2.4",  # torch.is_autocast_enabled(device_type)
        "numpy>=1.24",
        "numba>=0.58",
        "pyyaml>=6.0",
        "einops>=0.7",
        "tensorboard>=2.14",
        "shapely>=2.0",
        "matplotlib>=3.7",
        "imageio>=2.31",
        "tqdm>=4.65",
    ],
    # spconv and open3d come as CPU or CUDA builds under different names: pick one extra.
    extras_require={
        "cpu": ["spconv==2.3.8", "cumm<0.8", "open3d-cpu==0.20.0"],
        "gpu": ["spconv-cu120", "open3d>=0.18"],
        "test": ["pytest>=7", "ruff>=0.5"],
    },
)
