"""Experiment files (TOML) for `reservoir run`; shipped with the package so the default is found."""
