"""Run orchestration around the NNI algorithm: what ``a3cs search`` / ``retrain`` / ``reproduce``
/ ``sweep report`` do.

* :mod:`~a3cs_plugin.cosearch.config` -- the run configuration (one validated object);
* :mod:`~a3cs_plugin.cosearch.driver` -- config -> NNI search -> derived pair -> fine-tune ->
  scores -> mapper re-costing -> report;
* :mod:`~a3cs_plugin.cosearch.das` -- the accelerator-only search for a fixed agent;
* :mod:`~a3cs_plugin.cosearch.retrain`, :mod:`~a3cs_plugin.cosearch.report`,
  :mod:`~a3cs_plugin.cosearch.reproduce` (the paper's figures), :mod:`~a3cs_plugin.cosearch.sweep`
  (the Pareto report of an NNI sweep).
"""
