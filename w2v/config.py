"""The training config composed from the command line's overrides, and why overrides do not compose,
in one line. Hydra and OmegaConf only: `w2v train` reports a mistyped override here, before PyTorch and
Lightning are imported (seconds)."""

from __future__ import annotations

from omegaconf import DictConfig

from w2v import CONFIG_DIR


def compose_config(*overrides: str) -> DictConfig:
    """The config `w2v-train OVERRIDES...` trains with (Hydra's own settings left out)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def _one_line(err: Exception) -> str:
    """Hydra's composition error (a few lines, then its config search path) as one line: its lines
    joined, a list after a line ending in ':' given inline, and OmegaConf's reason added."""
    from omegaconf.errors import OmegaConfBaseException

    text = str(err).split("Config search path")[0]
    if isinstance(err.__cause__, OmegaConfBaseException):
        text += "\n" + str(err.__cause__).splitlines()[0]
    parts: list[str] = []
    listing = False
    for line in (line.strip() for line in text.splitlines()):
        if not line or line.startswith(("full_key:", "object_type=", "reference_type=")):
            listing = False
            continue
        if listing:
            parts[-1] += (" " if parts[-1].endswith(":") else ", ") + line
        else:
            parts.append(line.rstrip("."))
            listing = line.endswith(":")
    return "; ".join(parts[:1] + [part[:1].lower() + part[1:] for part in parts[1:]])


def composition_error(args: list[str]) -> str | None:
    """Why the command line's overrides do not compose into a config, in one line, or None. Hydra's
    own settings, the values of a sweep and any flag but -m are left to Hydra, which checks them as
    it starts."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    if any(arg.startswith("-") and arg not in ("-m", "--multirun") for arg in args):
        return None
    try:
        overrides = OverridesParser.create().parse_overrides([arg for arg in args if not arg.startswith("-")])
        compose_config(*(o.input_line for o in overrides
                         if not o.is_sweep_override() and not o.get_key_element().lstrip("+~").startswith("hydra")))
    except OverrideParseException as err:
        return f"cannot read the override {err.override!r}: {_one_line(err)}"
    except (HydraException, OmegaConfBaseException) as err:
        return f"{_one_line(err)} (`w2v train --help` lists every config group and key)"
    return None


def exit_if_not_composed(args: list[str]) -> None:
    """Stops the command with one `error:` line when its overrides `args` do not compose."""
    problem = composition_error(args)
    if problem is not None:
        raise SystemExit(f"error: {problem}")
