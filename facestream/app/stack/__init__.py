"""The local stack: ``facestream up`` (:mod:`up`, its stack file :mod:`stackfile`, the :mod:`supervisor`
that keeps its children alive), the whole pipeline on one machine (:mod:`local`) and the demo."""
