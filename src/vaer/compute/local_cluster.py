"""Start and stop a Ray cluster on this machine's loopback interface.

``ray start`` maps ``--node-ip-address=127.0.0.1`` to the machine's outward address; this
wrapper runs the real ``ray start``/``ray stop`` command line with the loopback pinned
(see :mod:`vaer.compute.loopback`), so head, worker nodes and drivers all talk over
127.0.0.1::

    python -m vaer.compute.local_cluster start --head --port 6399 --num-cpus 1
    python -m vaer.compute.local_cluster start --address 127.0.0.1:6399 --num-cpus 1
    python -m vaer.compute.local_cluster stop

Arguments are passed to ``ray`` unchanged.
"""

from __future__ import annotations

import sys
import types

from vaer.compute.loopback import pin_ray_to_loopback


def main(argv: list[str] | None = None) -> int:
    """Run Ray's command line with the cluster pinned to 127.0.0.1."""
    pin_ray_to_loopback()
    import ray._private.ray_constants as constants
    from ray.scripts import scripts

    # The pin also stops `ray start --address` from adding worker nodes (a guard meant for
    # Windows/macOS); lift that guard for the command line only.
    names = {k: getattr(constants, k) for k in dir(constants) if not k.startswith("__")}
    scripts.ray_constants = types.SimpleNamespace(**{**names, "ENABLE_RAY_CLUSTER": True})  # type: ignore[assignment]
    args = sys.argv[1:] if argv is None else argv
    try:
        scripts.cli.main(args=args, prog_name="ray", standalone_mode=False)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
