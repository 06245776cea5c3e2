import sys; sys.path.insert(0,"tests")
import numpy as np, traceback
from test_estimators import _one_city_data, ExperimentConfig, fit_estimators, NuisanceConfig
from vaer.estimators.nuisance import grouped_folds
data, _, _ = _one_city_data()
train, test = grouped_folds(data.clusters, 2, 0)[0]
cities = np.asarray(data.clusters)
first = cities[np.asarray(data.x["one_city"]) == 1][0]
far = cities[test][0] if first in set(cities[train]) else cities[train][0]
print(first, far)
data, roles, _ = _one_city_data({"two_cities": lambda f: f["city"].isin([f["city"].iloc[0], far]).astype(float)})
print(data.x.sum())
spec = ExperimentConfig.model_validate({"name": "x", "roles": roles.model_dump(), "estimators": [{"kind": "orthoiv"}]}).estimators
try:
    fit_estimators(data, spec, NuisanceConfig(model="ridge"), random_state=0)
except Exception: traceback.print_exc()
