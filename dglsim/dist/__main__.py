import sys

from dglsim.study.allocator import reexec_under_tcmalloc

if __name__ == "__main__":
    reexec_under_tcmalloc(["-m", "dglsim.dist", *sys.argv[1:]])
    from dglsim.dist.cli import main

    sys.exit(main())
