"""Draw pendulum_sequences.png: observed (occluded) frames above their clean frames.

Usage, from the repository root::

    python datasets/pendulum/make_figure.py

The first three test trajectories of the benchmark (seed 0), every 4th of the first 48 frames, the
occlusion factor f above each observed frame, and f over all 100 frames at the bottom. Frames the
benchmark keeps (sample_rate 0.5) have black titles; dropped ones are grey.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from smr_ts.datasets import make_pendulum  # noqa: E402

OUT = Path(__file__).with_name("pendulum_sequences.png")
SEQUENCES = (0, 1, 2)
SHOWN = np.arange(0, 48, 4)


def main() -> None:
    # The full benchmark twice (a few seconds each): the sample rate changes only the kept frames.
    every_frame = make_pendulum(sample_rate=1.0).test
    kept = make_pendulum().test.time

    figure = plt.figure(figsize=(len(SHOWN) * 0.9, 2 * len(SEQUENCES) * 1.0 + 2.2))
    grid = figure.add_gridspec(2 * len(SEQUENCES) + 1, len(SHOWN),
                               height_ratios=[1] * (2 * len(SEQUENCES)) + [2.2])
    for row, sequence in enumerate(SEQUENCES):
        for column, frame in enumerate(SHOWN):
            is_kept = frame in kept[sequence]
            for offset, images in enumerate((every_frame.images, every_frame.clean_images)):
                axis = figure.add_subplot(grid[2 * row + offset, column])
                axis.imshow(images[sequence, frame], cmap="gray", vmin=0, vmax=255,
                            interpolation="nearest")
                axis.set_xticks([])
                axis.set_yticks([])
                if offset == 0:
                    axis.set_title(f"t={frame} f={every_frame.occlusion[sequence, frame]:.2f}",
                                   fontsize=6, color="black" if is_kept else "0.6")
                if column == 0:
                    axis.set_ylabel(f"#{every_frame.ids[sequence]}\n{('observed', 'clean')[offset]}", fontsize=7)
    axis = figure.add_subplot(grid[-1, :])
    for sequence in SEQUENCES:
        axis.plot(every_frame.occlusion[sequence], label=f"#{every_frame.ids[sequence]}")
    axis.set_xlabel("frame index (0.01 s each)", fontsize=8)
    axis.set_ylabel("occlusion factor f", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=7, ncol=len(SEQUENCES), loc="lower right")
    figure.suptitle("Pendulum occlusion benchmark: observed frames (above) and clean frames "
                    "(below); grey titles = frames dropped at sample_rate 0.5", fontsize=8)
    figure.tight_layout()
    figure.savefig(OUT, dpi=110)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
