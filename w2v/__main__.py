"""`python -m w2v` runs the training entry point, like `w2v-train`."""

from w2v.training import main

if __name__ == "__main__":
    main()
