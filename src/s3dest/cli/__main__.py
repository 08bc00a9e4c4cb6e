"""`python -m s3dest.cli`."""

from s3dest.cli import main

if __name__ == "__main__":
    main()
