"""`python -m runner.kernel_check [N ...]`: NVRTC-compile the kernel for sm_80/sm_90 and
check it is spill-free at the launched shape (see `runner.kernel.nvrtc_check`)."""

import sys

from runner.kernel.nvrtc_check import main

if __name__ == "__main__":
    sys.exit(main())
