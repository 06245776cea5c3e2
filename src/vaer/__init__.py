"""vaer: the effect of virtual agglomeration on firms' export resilience, by causal ML.

Heavy dependencies (econml, mlflow, shap) are imported only by the modules that use them,
so ``import vaer`` stays fast.
"""

__version__ = "0.1.0"
