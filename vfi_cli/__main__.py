"""Entry point for `python -m vfi_cli`."""

from vfi_cli.cli import main

if __name__ == "__main__":
    main()
