import sys

from dglsim.study.allocator import reexec_with_allocator

if __name__ == "__main__":
    reexec_with_allocator(["-m", "dglsim.dist", *sys.argv[1:]])
    from dglsim.dist.cli import main

    sys.exit(main())
