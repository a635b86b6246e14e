"""automl_nb: AutoML for computer vision that lives in a Jupyter notebook."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent

setup(
    name="automl_nb",
    version="0.1.0",
    description="AutoML for computer vision in Jupyter: %%automl jobs, Dask sweeps, live curves.",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["automl_nb", "automl_nb.*"]),
    install_requires=[
        # The CUDA build from the ordinary registry; it runs on CPU too. torchvision pins
        # an exact torch, so the two ranges move together.
        "torch>=2.15,<2.16",
        "torchvision>=0.29,<0.30",
        "timm>=1.0.20,<2",
        "numpy>=1.26",
        "pillow>=10",
        "pyyaml>=6",
        "fsspec>=2024.2",
        "matplotlib>=3.8",
        "tqdm>=4.66",
        "pycocotools>=2.0.8",
        # Sweeps: trials run through a Dask cluster; optuna's TPE sits behind `bayesian`.
        "dask>=2025.1",
        "distributed>=2025.1",
        "optuna>=4.2,<6",
        "pandas>=2.2",
        # Explanations: captum's attributions, colorcet's bgyw scale; scikit-image segments for XRAI.
        "captum>=0.8,<1",
        "colorcet>=3.1",
        "scikit-image>=0.24",
        # Streamed images cached as Zarr v3 shards; aiohttp backs fsspec's http(s) URLs.
        "zarr>=3.1,<4",
        "numcodecs>=0.15",
        "aiohttp>=3.9",
        # The notebook surface.
        "ipython>=8.20",
        "ipywidgets>=8.1,<9",
        # The live curves chart: its ES module ships in automl_nb/widgets/static (no CDN).
        "anywidget>=0.9,<1",
        "jupyter-ui-poll>=1.0",
    ],
    package_data={"automl_nb.widgets": ["static/*.js"]},
    extras_require={
        # Notebooks run in a real kernel (nbclient); widgets render in JupyterLab in Debian's
        # chromium, driven by Playwright (its own browser download is not used).
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            # Two test processes, one core each (tests/conftest.py pins them).
            "pytest-xdist>=3.6",
            "trustme>=1.1",  # a CA and certificates for the TLS cluster test
            "nbclient>=0.10",
            "nbformat>=5.10",
            "ipykernel>=6.29",
            "jupyterlab>=4.2,<5",
            "playwright>=1.45",
            # The real datasets' handwritten digits (automl_nb.data.real).
            "scikit-learn>=1.5",
            # ONNX export and its tests (the `export` extra).
            "onnx>=1.17,<2",
            "onnxruntime>=1.20,<2",
            "onnxscript>=0.5,<1",
            # A run on s3:// tested against moto's S3 server on 127.0.0.1 (the `remote` extra).
            "s3fs>=2024.12",
            "moto[server]>=5.0.20",
        ],
        # Runs on object storage (submit(output="s3://..."), load_run("s3://...")); gcsfs (gs://)
        # or adlfs (abfs://) instead for those stores.
        "remote": ["s3fs>=2024.12"],
        # ONNX export (automl-nb export, run.export, %automl export) and Predictor.from_onnx;
        # onnxscript is the dynamo exporter's translator.
        "export": ["onnx>=1.17,<2", "onnxruntime>=1.20,<2", "onnxscript>=0.5,<1"],
        # Benchmarks on the real datasets of automl_nb.data.real.
        "bench": ["scikit-learn>=1.5"],
    },
    entry_points={"console_scripts": ["automl-nb=automl_nb.cli:main"]},
)
