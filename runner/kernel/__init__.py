"""Simulation: the batch contract (`Batch` in, `BatchResult` out), the backends that honour
it (NumPy reference, the CUDA kernel built for the CPU or run on a GPU), launch planning
and the NVRTC check of the GPU build."""
