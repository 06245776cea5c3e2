import pickle, numpy as np, warnings
d = pickle.load(open("scratch/fail_1061.pkl","rb"))
x=d["x"]; print(x.shape, d["params"])
ptp = np.ptp(x,axis=0); print("constant cols", np.flatnonzero(ptp==0))
print("col std min", np.sort(x.std(0))[:5])
from econml.dml import SparseLinearDML
from vaer.estimators.learners import ZeroRegressor
from vaer.estimators.registry import halves
p=d["params"]
m = SparseLinearDML(model_y=ZeroRegressor(), model_t=ZeroRegressor(), fit_cate_intercept=p["fit_cate_intercept"], alpha=p["alpha"], n_alphas=p["n_alphas"], max_iter=p["max_iter"], tol=p["tol"], cv=halves(len(x)), n_jobs=1, random_state=0)
try:
    m.fit(d["y"], d["t"], X=x)
except Exception as e: print("err", e)
fm = m._ortho_learner_model_final._model_final._model
print(type(fm))
print("coef nan", np.isnan(fm.coef_).sum(), "intercept", fm.intercept_)
print(fm.coef_)
print(getattr(fm,'alpha_',None))
