import pytest
import torch


@pytest.fixture(autouse=True, scope="package")
def one_torch_thread():
    """Explanations here run on tiny images, where a second thread gains nothing; on a shared
    machine two OpenMP threads waiting on each other made these tests 5-50x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
