"""Placeholder while this module is being written (this session); it registers no command yet."""


def register(sub, common) -> None:
    return None
