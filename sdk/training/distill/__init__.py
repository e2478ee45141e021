"""``ofer distill``: occlusion-robust students (:mod:`.loop`) or a de-occluder for the inpaint route (:mod:`.inpaint`)
from unlabelled faces and a real teacher."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .config import GENERAL_PROTOCOLS, HEADSET_PROTOCOLS, DistillConfig  # torch-free: the CLI builds its parser

if TYPE_CHECKING:
    from .loop import Distiller


def __getattr__(name: str) -> Any:
    if name == "Distiller":  # torch: imported when asked for
        from .loop import Distiller

        return Distiller
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DistillConfig", "Distiller", "GENERAL_PROTOCOLS", "HEADSET_PROTOCOLS", "distill"]


def distill(
    cfg: DistillConfig,
    out_dir: str | Path | None,
    *,
    resume: str | Path | None = None,
    time_budget_s: float | None = None,
    log: Callable[[str], None] = print,
    train: Any = None,
    val: Any = None,
) -> dict[str, Any]:
    """Open the data (``cfg.data``'s ``train`` split; ``cfg.val_data`` or ``cfg.data``'s ``val`` split for the
    held-out people), distill and return ``{"best", "epochs", "seconds", "distiller"}``.

    Raises:
        ConfigError / DatasetError: bad specs, no held-out people, a teacher that cannot be imported.
    """
    from runtime.errors import ConfigError, DatasetError

    from ..methods import open_data
    from .loop import Distiller

    train = train if train is not None else open_data(cfg.data, "train")
    if val is None:
        try:
            val = open_data(cfg.val_data or cfg.data, "val")
        except (ConfigError, DatasetError) as exc:
            raise ConfigError(
                f"distill needs held-out people for early stopping: {exc}; pass --val-data SPEC "
                f"(faces: specs hold out val=0.15 of the people by default)"
            ) from None
    _check_disjoint(train, val)
    if cfg.route == "inpaint":
        from .inpaint import InpaintDistiller

        d: Distiller = InpaintDistiller(cfg, train, val, out_dir, log=log)
    else:
        d = Distiller(cfg, train, val, out_dir, log=log)
    log(
        f"distill: {len(train)} training faces, {len(val)} held-out faces "
        f"({len(set(d.held_out.people.tolist()))} people); teacher {d.teacher.source}"
    )
    if resume is not None:
        d.resume(resume)
        log(f"resumed after epoch {d.epoch}")
    res = d.fit(time_budget_s=time_budget_s)
    res["distiller"] = d
    return res


def _check_disjoint(train: Any, val: Any) -> None:
    """Refuse a held-out set that shares a person with the training set (when both name their people)."""
    from runtime.errors import ConfigError

    def people(ds: Any) -> set[str]:
        if not hasattr(ds, "subject"):
            return set()
        return {s for s in (ds.subject(i) for i in range(len(ds))) if s is not None}

    shared = people(train) & people(val)
    if shared:
        raise ConfigError(
            f"{len(shared)} person(s) are in both the training and the held-out data (e.g. "
            f"{sorted(shared)[0]}); hold out other people"
        )
