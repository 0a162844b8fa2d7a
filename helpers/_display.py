"""Widgets that degrade to a static picture where no widget front end exists.

A demo or quick check is displayed as one MIME bundle holding both the widget
view and a static rendering (a PNG of the default figure, or HTML). Front ends
that run widgets (JupyterLab, Jupyter Notebook, VS Code, Colab) prefer the widget;
nbconvert, nbval and GitHub show the static part. Outputs are written into the
widget's state (``Output.outputs``, ``HTML.value``) rather than captured with
``with output:``, which behaves the same in ipywidgets 7.7 (Colab) and 8, with or
without a front end, and can be checked from Python.
"""
from __future__ import annotations

import base64
import io

import matplotlib
import PIL.Image
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.layout_engine import PlaceHolderLayoutEngine

# The widget-view MIME type and protocol version shared by ipywidgets 7.x and 8.x.
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_PROTOCOL = {"version_major": 2, "version_minor": 0}


def figure_png(fig: matplotlib.figure.Figure, dpi: int = 100, *, tight: bool = True) -> str:
    """Render ``fig`` to a base64-encoded PNG string (as stored in notebooks).

    ``tight`` crops the image to what is drawn (as Jupyter's inline backend does), which
    costs one more drawing pass; a figure already laid out to fit can skip it.
    """
    buf = io.BytesIO()
    engine = fig.get_layout_engine()
    if tight or not (engine is None or isinstance(engine, PlaceHolderLayoutEngine)):
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    else:
        _draw_png(fig, dpi, buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _draw_png(fig: matplotlib.figure.Figure, dpi: int, buf: io.BytesIO) -> None:
    """The pixels ``savefig`` would give, in one drawing pass instead of two.

    After ``tight_layout`` a figure keeps a placeholder layout engine, and ``savefig``
    draws any figure with an engine twice. A demo redraws on every slider move, so the
    second pass and PNG's default compression (level 6; level 1 is half the time for a
    file about 10 % larger) are worth saving. A figure made with ``Figure()`` keeps the
    Agg canvas given to it here: a figure redrawn in place then reuses its renderer,
    and with it the measured sizes of its texts.
    """
    old_canvas, old_dpi = fig.canvas, fig.dpi
    keep = type(old_canvas) is FigureCanvasBase  # no backend of its own to give back
    canvas = old_canvas if isinstance(old_canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    try:
        fig.set_dpi(dpi)
        canvas.draw()
        width, height = canvas.get_width_height(physical=True)
        image = PIL.Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        image.save(buf, format="png", compress_level=1)
    finally:
        fig.set_dpi(old_dpi)
        if not keep:
            fig.set_canvas(old_canvas)


def png_output(png_b64: str, text: str = "<Figure>") -> dict:
    """A ``display_data`` output as ``ipywidgets.Output.outputs`` stores it."""
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": png_b64, "text/plain": text}}


def text_output(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def widget_bundle(widget, static: dict, text: str) -> dict:
    """MIME bundle showing ``widget`` live and ``static`` (mime -> data) elsewhere."""
    bundle = {"text/plain": text, **static}
    bundle[WIDGET_MIME] = {**_PROTOCOL, "model_id": widget.model_id}
    return bundle
