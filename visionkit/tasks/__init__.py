"""The codecs: one module per task, one class per model family, each turning images into model inputs and model
outputs into results (``preprocess`` / ``postprocess``), with the model executed by a session of the runtime layer
(``visionkit.runtimes``) and never by engine code here. ``yolo.py`` is the ultralytics family for all four of its
tasks; ``base.py`` the contract, the option table and the registry ``backend_class`` / ``backend_for_file`` use.
Predictors built from several models or over time (tracking, action windows, top-down pose, many streams) live one
floor up, in ``visionkit.composites``.
"""
