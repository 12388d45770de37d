"""`python -m w2v` is the `w2v` command: `python -m w2v train model=cbow`, `python -m w2v eval RUN`."""

from w2v.commands import cli

if __name__ == "__main__":
    cli()
