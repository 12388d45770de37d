"""`python -m w2v.commands.query_main` runs w2v-query (for environments without the console scripts)."""

from w2v.commands.query import cli

if __name__ == "__main__":
    cli()
