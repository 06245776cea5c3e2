"""The report's own words in each language: one catalogue, English and Chinese side by side.

Every heading, sentence, axis label, table header and note that the report writes itself
(not the data's column names, levels or labels, not numbers, not estimator names) is an
entry of :data:`WORDS`, ``key -> (English, Chinese)``. ``report.language`` picks the column;
English is the default. An entry may hold ``{name}`` placeholders, filled by
:meth:`Words.__call__`; entries shown in HTML may hold simple markup (``<strong>``), and
:meth:`Words.markup` escapes the values put into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

LANGUAGES = ("en", "zh")
"""``report.language`` values: English (default) and simplified Chinese."""

WORDS: dict[str, tuple[str, str]] = {
    # --- the page and its header
    "html.lang": ("en", "zh-CN"),
    "title": ("Effect of {treatment} on {outcome}", "{treatment}对{outcome}的影响"),
    "page.title": ("vaer report", "vaer 报告"),
    "header.sub": ("Experiment", "实验"),
    "header.run": ("run", "运行"),
    "toc.summary": ("Summary", "摘要"),
    "toc.data": ("Data and sample", "数据与样本"),
    "toc.truth": ("Accuracy against the truth", "与真实值的比较"),
    "toc.reproducibility": ("Reproducibility", "可复现性"),
    # --- data page
    "data.title": ("Data and sample", "数据与样本"),
    "data.source": ("Source", "数据来源"),
    "data.rows": ("Rows used", "使用的行数"),
    "data.firms": ("Firms", "企业数"),
    "data.clusters": ("Clusters ({cluster})", "聚类（{cluster}）"),
    "data.no_cluster": ("none: each firm its own", "无：每家企业单独成类"),
    "data.outcome": ("Outcome", "结果变量"),
    "data.treatment": ("Treatment", "处理变量"),
    "data.modifiers": ("Effect modifiers", "效应调节变量"),
    "data.controls": ("Controls", "控制变量"),
    "data.firm_types": ("Firm types", "企业类型"),
    "data.none": ("none", "无"),
    "data.kept": (
        "Every row of the input table was kept: the table was validated, not filtered.",
        "输入表的每一行都被保留：数据只经过校验，没有被筛选。",
    ),
    # --- panel sample
    "panel.title": ("From the firm panel to the analysis table", "从企业面板到分析表"),
    "panel.window": (
        "Shock window <strong>{shock}</strong>: pre-period {pre} (features and {treatment} "
        "measured in {pre_last}), trough {trough}, recovery {recovery}.",
        "冲击窗口 <strong>{shock}</strong>：冲击前 {pre}（特征与{treatment}取 {pre_last} 年的值），"
        "低谷 {trough}，恢复 {recovery}。",
    ),
    "panel.outcome": (
        "Outcome: {outcome} ({growth} growth, {expected} expected growth{winsor}); "
        "{treatment} built as: {index}{binarized}.",
        "结果变量：{outcome}（{growth} 增长率，{expected} 预期增长率{winsor}）；"
        "{treatment}的构造方法：{index}{binarized}。",
    ),
    "panel.winsor": (
        ", winsorised at {cuts} ({n} values clipped)",
        "，在 {cuts} 处缩尾（截断 {n} 个值）",
    ),
    "panel.binarized": (", binarised ({how})", "，二值化（{how}）"),
    "panel.truth_exact": (
        "The synthetic truth is exact for these measures.",
        "对这些指标，合成数据的真实值是精确的。",
    ),
    "panel.truth_approx": (
        "The synthetic truth is an approximation for these measures.",
        "对这些指标，合成数据的真实值是近似值。",
    ),
    "panel.firms": ("Firms", "企业"),
    "panel.count": ("Count", "数量"),
    "panel.in_panel": ("in the panel ({n} firm-years)", "面板中（{n} 个企业-年）"),
    "panel.dropped": ("dropped: {reason}", "剔除：{reason}"),
    "panel.in_table": ("in the analysis table", "进入分析表"),
    # --- summary
    "summary.title": ("Summary", "摘要"),
    "summary.ate": (
        "<strong>Average effect.</strong> According to {estimator}, raising a firm's "
        "{treatment} by one unit changes its {outcome} by <strong>{estimate}</strong> "
        "(95% CI {low} to {high}; {se_type} standard errors).",
        "<strong>平均效应。</strong>根据 {estimator}，企业的{treatment}每提高一个单位，"
        "其{outcome}变化 <strong>{estimate}</strong>（95% 置信区间 {low} 至 {high}；{se_type} 标准误）。",
    ),
    "summary.significant": (
        "The effect is distinguishable from zero at the 5% level.",
        "该效应在 5% 水平上显著异于零。",
    ),
    "summary.not_significant": (
        "The interval includes zero: the data do not rule out no effect.",
        "置信区间包含零：数据不能排除效应为零。",
    ),
    "summary.gates": (
        "<strong>Who gains most.</strong> Among firm types, the largest average effect is "
        "for <strong>{most}</strong> ({most_estimate}, 95% CI {most_low} to {most_high}) and "
        "the smallest for <strong>{least}</strong> ({least_estimate}, 95% CI {least_low} to "
        "{least_high}){by}.",
        "<strong>谁受益最多。</strong>在各类企业中，平均效应最大的是 <strong>{most}</strong>"
        "（{most_estimate}，95% 置信区间 {most_low} 至 {most_high}），最小的是 "
        "<strong>{least}</strong>（{least_estimate}，95% 置信区间 {least_low} 至 {least_high}）{by}。",
    ),
    "summary.gates_by": (", by {estimator}", "，估计量为 {estimator}"),
    "summary.equality_rejects": (
        "The test that the effect is the same for every {dimension} rejects equality ({p}).",
        "检验各{dimension}效应相同的原假设被拒绝（{p}）。",
    ),
    "summary.equality_holds": (
        "The test that the effect is the same for every {dimension} does not reject "
        "equality ({p}): the {dimension} differences may be noise.",
        "检验各{dimension}效应相同的原假设未被拒绝（{p}）：{dimension}之间的差异可能只是噪声。",
    ),
    "summary.channels": (
        "<strong>Channels.</strong> The <strong>{channel}</strong> channel carries the "
        "largest share of the heterogeneity in effects ({share}{ci}){next}.",
        "<strong>渠道。</strong><strong>{channel}</strong> 渠道承载了效应异质性中最大的份额"
        "（{share}{ci}）{next}。",
    ),
    "summary.channels_ci": (", 95% CI {low} to {high}", "，95% 置信区间 {low} 至 {high}"),
    "summary.channels_ci_linear": (
        ", 95% CI {low} to {high}, for the best linear projection",
        "，95% 置信区间 {low} 至 {high}（最佳线性投影）",
    ),
    "summary.channels_next": (", followed by {channel} ({share})", "，其次是 {channel}（{share}）"),
    "summary.did": (
        "<strong>The policy (difference-in-differences).</strong> Across cohorts and years "
        "after adoption, the policy{policy} changed firms' {outcome} by "
        "<strong>{estimate}</strong> ({low} to {high}; clustered standard errors).",
        "<strong>政策效应（双重差分）。</strong>在各批次及实施后的各年份中，该政策{policy}使企业的"
        "{outcome}变化 <strong>{estimate}</strong>（{low} 至 {high}；聚类标准误）。",
    ),
    "summary.did_significant": (
        "The effect is distinguishable from zero at the 5% level.",
        "该效应在 5% 水平上显著异于零。",
    ),
    "summary.did_not_significant": ("The interval includes zero.", "置信区间包含零。"),
    "summary.pretrend_rejects": (
        "The joint test of no effect before adoption rejects ({p}): treated and "
        "comparison cities did not trend alike, so read the effect with care.",
        "政策实施前无效应的联合检验被拒绝（{p}）：处理城市与对照城市的趋势并不一致，解读该效应时需谨慎。",
    ),
    "summary.pretrend_holds": (
        "The joint test of no effect before adoption does not reject ({p}).",
        "政策实施前无效应的联合检验未被拒绝（{p}）。",
    ),
    "summary.robust_family_none": (
        "<strong>Robustness.</strong> Taken together, the {n} robustness checks do not flag "
        "the model (Holm's adjustment across the checks; false-alarm rate {alpha}).",
        "<strong>稳健性。</strong>综合来看，{n} 项稳健性检验未标记该模型（跨检验 Holm 调整；误报率 {alpha}）。",
    ),
    "summary.robust_family_flagged": (
        "<strong>Robustness.</strong> The robustness checks flag the model (Holm's "
        "adjustment across the {n} checks; false-alarm rate {alpha}): {checks}.",
        "<strong>稳健性。</strong>稳健性检验标记了该模型（对 {n} 项检验作 Holm 调整；误报率 {alpha}）：{checks}。",
    ),
    "summary.robust_family_alone": (
        " Flagged at its own level only, as one of several checks may be by chance: {checks}.",
        "仅在其自身水平上被标记（多项检验中可能偶然出现）：{checks}。",
    ),
    "summary.robust_all": (
        "<strong>Robustness.</strong> All {n} robustness checks hold.",
        "<strong>稳健性。</strong>全部 {n} 项稳健性检验均通过。",
    ),
    "summary.robust_some": (
        "<strong>Robustness.</strong> {passed} of {n} robustness checks hold; not holding: "
        "{failed}.",
        "<strong>稳健性。</strong>{n} 项稳健性检验中有 {passed} 项通过；未通过：{failed}。",
    ),
    "summary.data": (
        "<strong>Data.</strong> {firms} firms in {clusters} clusters; data: {source}.",
        "<strong>数据。</strong>{clusters} 个聚类中的 {firms} 家企业；数据：{source}。",
    ),
    "summary.truth": (
        "The data are synthetic with a known effect: the true average effect is {ate}.",
        "数据为效应已知的合成数据：真实平均效应为 {ate}。",
    ),
    "p.equals": ("p = {p}", "p = {p}"),
    "p.below": ("p &lt; {p}", "p &lt; {p}"),
    # --- truth and footer
    "truth.title": ("Accuracy against the known truth", "与已知真实值的比较"),
    "truth.estimator": ("Estimator", "估计量"),
    "truth.bias": ("ATE bias", "ATE 偏差"),
    "truth.covered": ("CI covers truth", "置信区间覆盖真实值"),
    "truth.rmse": ("CATE RMSE", "CATE 均方根误差"),
    "truth.ratio": ("RMSE / sd(tau)", "RMSE / sd(tau)"),
    "truth.note": (
        "The data are synthetic: the true effects are known, so these rows measure the "
        "estimators, not the economy.",
        "数据为合成数据：真实效应已知，因此这些行衡量的是估计量的表现，而非经济现实。",
    ),
    "yes": ("yes", "是"),
    "no": ("no", "否"),
    "footer.title": ("Reproducibility", "可复现性"),
    "footer.run": (
        "Run id <code>{run_id}</code> · seed {seed} · git commit <code>{commit}</code>{dirty} · "
        "data fingerprint <code>{fingerprint}</code>",
        "运行 ID <code>{run_id}</code> · 随机种子 {seed} · git 提交 <code>{commit}</code>{dirty} · "
        "数据指纹 <code>{fingerprint}</code>",
    ),
    "footer.dirty": (" (uncommitted changes)", "（含未提交的修改）"),
    "footer.rerender": (
        "Re-render this report from the run's MLflow artifacts, without refitting: "
        "<code>vaer report {run_id}</code>. Significance: * p&lt;0.10, ** p&lt;0.05, "
        "*** p&lt;0.01; standard errors in parentheses.",
        "无需重新拟合，可从该运行的 MLflow 工件重新生成本报告：<code>vaer report {run_id}</code>。"
        "显著性：* p&lt;0.10，** p&lt;0.05，*** p&lt;0.01；括号内为标准误。",
    ),
    "footer.config": ("Resolved configuration", "解析后的配置"),
    # --- generic tables
    "table.per_unit": (
        "Per-firm table <code>{name}</code>: {n} rows, in <code>tables/{name}.csv</code>{figure}.",
        "企业层面的表 <code>{name}</code>：{n} 行，见 <code>tables/{name}.csv</code>{figure}。",
    ),
    "table.per_unit_figure": (" (summarised in the figure above)", "（上图为其概括）"),
    "col.estimator": ("Estimator", "估计量"),
    "col.dimension": ("Firm type", "企业类型"),
    "col.level": ("Level", "水平"),
    "col.estimate": ("Estimate", "估计值"),
    "col.se": ("SE", "标准误"),
    "col.ci": ("95% CI", "95% 置信区间"),
    "col.n": ("N", "N"),
    "col.p_value": ("p", "p"),
    "col.p_adj": ("p (adj.)", "p（调整后）"),
    "col.p_holm": ("p (Holm)", "p（Holm）"),
    "col.p_romano_wolf": ("p (Romano–Wolf)", "p（Romano–Wolf）"),
    "col.se_type": ("SE type", "标准误类型"),
    "col.estimand": ("Estimand", "估计对象"),
    "col.channel": ("Channel", "渠道"),
    "col.share": ("Share", "份额"),
    "col.mean_abs_shap": ("Mean |SHAP|", "平均 |SHAP|"),
    "col.check": ("Check", "检验"),
    "col.variant": ("Variant", "变体"),
    "col.passed": ("Passes", "通过"),
    "col.reference": ("Reference", "参照值"),
    "col.rule": ("Rule", "规则"),
    "col.term": ("Term", "项"),
    "col.group": ("Group", "组"),
    "col.target": ("Target", "目标"),
    "col.statistic": ("Statistic", "统计量"),
    "col.df": ("df", "自由度"),
    "col.test": ("Test", "检验"),
    "col.contrast": ("Contrast", "对比"),
    "col.t_stat": ("t", "t"),
    "col.feature": ("Feature", "特征"),
    "col.mediator": ("Mediator", "中介变量"),
    "col.reason": ("Reason", "原因"),
    "col.count": ("Count", "数量"),
    "col.aggregation": ("Aggregation", "加总方式"),
    "col.interval": ("Interval", "区间"),
    "col.meaning": ("Meaning", "含义"),
    "col.candidate": ("Candidate", "候选项"),
    "col.loss": ("Loss", "损失"),
    "col.chosen": ("Chosen", "选中"),
    "col.key": ("Key", "键"),
    "col.outcome": ("Outcome", "结果变量"),
    "col.inference": ("Inference", "推断"),
    "col.n_clusters": ("N clusters", "聚类数"),
    "col.n_obs": ("N obs", "观测数"),
    "col.overall": ("Overall", "总体"),
    "col.band_low": ("Band low", "联合带下限"),
    "col.band_high": ("Band high", "联合带上限"),
    "head.cities": ("Cities", "城市数"),
    "head.joint_band": ("Joint band", "联合置信带"),
    "head.coefficient": ("Coefficient", "系数"),
    "head.p_one_sided": ("one-sided p", "单侧 p"),
    "head.p_value_full": ("p-value", "p 值"),
    "head.difference": ("Difference", "差异"),
    "head.effect": ("Effect", "效应"),
    "head.firms": ("Firms", "企业"),
    "head.action": ("Action", "行动"),
    "head.leaf": ("Leaf", "叶"),
    "head.characteristic": ("Characteristic", "特征"),
    "head.top_bottom": ("Top − bottom", "最高组 − 最低组"),
    "head.group_pred": ("Group (by predicted effect)", "组（按预测效应）"),
    "head.mean_pred": ("Mean predicted", "预测均值"),
    "head.rate": ("RATE", "RATE"),
    "head.method": ("Method", "方法"),
    "head.explained": ("Firms explained", "被解释企业数"),
    "head.refitted": ("Firms refitted on", "重新拟合所用企业数"),
    "head.background": ("Background", "背景样本"),
    "head.fidelity": ("Fidelity R²", "拟合保真度 R²"),
    "head.seconds": ("Seconds", "秒"),
    "head.interval": ("95% interval", "95% 区间"),
    "head.p_no_het": ("p (no heterogeneity)", "p（无异质性）"),
    "head.level_test": ("Level", "检验水平"),
    "head.verdict": ("Verdict", "结论"),
    "head.ate": ("ATE", "ATE"),
    "head.rv": ("Robustness value", "稳健性值"),
    "head.rv_ci": ("RV (CI)", "RV（置信区间）"),
    "head.rv_econml": ("RV (econml)", "RV（econml）"),
    "head.scenario": ("Scenario", "情形"),
    "head.bias_bound": ("Bias bound", "偏差上界"),
    "head.bounds": ("Bounds", "界"),
    "head.bounds_ci": ("95% CI of bounds", "界的 95% 置信区间"),
    "head.dimension_plain": ("Dimension", "维度"),
    "head.f_htz": ("F (HTZ)", "F（HTZ）"),
    "head.gate": ("GATE", "GATE"),
    # --- sections: titles, figure captions and notes
    "treatment.title": ("Treatment distribution and overlap", "处理变量的分布与重叠"),
    "treatment.caption": (
        "Left: the treatment across firms. Right: the treatment against its cross-fitted "
        "prediction from the controls and modifiers (log counts); a wide cloud around the "
        "dashed line means the treatment varies among comparable firms.",
        "左：处理变量在企业间的分布。右：处理变量与其基于控制变量和调节变量的交叉拟合预测值"
        "（对数计数）；虚线周围的点云越宽，说明处理变量在可比企业之间的变化越大。",
    ),
    "ate.title": ("Average effect per estimator", "各估计量的平均效应"),
    "ate.caption": (
        "Each firm's effect estimated by models that never saw its cluster (cluster "
        "out-of-bag or cross-fitted); the red line is the average effect.",
        "每家企业的效应均由从未见过其所在聚类的模型估计（聚类袋外或交叉拟合）；红线为平均效应。",
    ),
    "ate.note": (
        "The average effects average doubly robust scores, with standard errors clustered "
        "by the cluster role. The intervals table says, per estimator, what the per-firm "
        "intervals of the firm-level table cover.",
        "平均效应是双重稳健得分的平均值，标准误按聚类变量聚类。区间表说明了每个估计量在企业层面表中"
        "给出的企业区间覆盖的是什么。",
    ),
    "tuning.title": ("Tuning on cluster-grouped splits", "按聚类分组的调参"),
    "tuning.note": (
        "Nuisance candidates are scored by cluster-grouped cross-validated MSE of the "
        "outcome and treatment regressions (each relative to its variance); forest "
        "candidates by the R-loss on held-out clusters. The chosen ones were used for the "
        "estimates above.",
        "辅助模型的候选项按结果与处理回归的聚类分组交叉验证均方误差（相对于各自方差）评分；"
        "森林候选项按留出聚类上的 R 损失评分。上文的估计使用了选中的候选项。",
    ),
    "gates.title": ("Group effects by firm type (GATEs)", "按企业类型的组平均效应（GATE）"),
    "sorted.title": ("Sorted GATES and CLAN", "排序 GATES 与 CLAN"),
    "calibration.title": ("Calibration and best linear projection", "校准检验与最佳线性投影"),
    "rate.title": (
        "Ranking firms by predicted effect: RATE and the TOC curve",
        "按预测效应对企业排序：RATE 与 TOC 曲线",
    ),
    "policy.title": ("Policy tree over firm types", "基于企业类型的政策树"),
    "attribution.title": ("Mechanism attribution", "机制归因"),
    "attribution.caption": (
        "Share of the variation in firm-level effects attributed to each mechanism channel "
        "(SHAP values of the effect model summed over the channel's proxies), and each "
        "channel's mean absolute contribution within each firm type.",
        "企业层面效应的变异中归因于各机制渠道的份额（效应模型的 SHAP 值在该渠道代理变量上求和），"
        "以及各渠道在每类企业内部的平均绝对贡献。",
    ),
    "mechanisms.title": ("Mechanism tests", "机制检验"),
    "did.title": (
        "The policy as a natural experiment: staggered difference-in-differences",
        "作为自然实验的政策：交错双重差分",
    ),
    "did.caption": (
        "Top: average effect on the treated by years since the firm's city adopted the "
        "policy; where they are printed (see the inference column), bars are pointwise "
        "intervals (did.alpha, 95% by default) and the shaded band holds for all event "
        "times at once. Before adoption (grey) the estimates should be zero if treated and "
        "untreated cities trended alike. Beside them, when run: Sun-Abraham's "
        "interaction-weighted event study (equal to Callaway-Sant'Anna's after adoption on "
        "a balanced panel; before adoption it measures from year -1, Callaway-Sant'Anna's "
        "varying base from the year before) and the plain TWFE leads and lags, which mix "
        "other event times' effects in when effects differ across cohorts. Middle: every "
        "cohort-year effect ATT(g, t). Bottom: the Goodman-Bacon decomposition of the TWFE "
        "coefficient into 2x2 comparisons; red ones use already-treated firms as controls.",
        "上：按企业所在城市实施政策后的年数划分的处理组平均效应；在给出区间处（见推断列），误差线为逐点"
        "区间（did.alpha，默认 95%），阴影带同时覆盖所有事件时间。若处理城市与未处理城市趋势一致，"
        "实施前（灰色）的估计应为零。若已运行，旁边还有 Sun-Abraham 交互加权事件研究（在平衡面板上，"
        "实施后与 Callaway-Sant'Anna 相同；实施前以第 -1 年为基期，而 Callaway-Sant'Anna 以前一年为"
        "变动基期）以及普通 TWFE 的前导与滞后项——当各批次效应不同时，后者会混入其他事件时间的效应。"
        "中：每个批次-年份效应 ATT(g, t)。下：TWFE 系数的 Goodman-Bacon 分解（分解为 2x2 比较）；"
        "红色的比较以已处理企业为对照。",
    ),
    "did.twfe_view": (
        "TWFE beside Callaway-Sant'Anna (rows of tables/did_aggregates.csv)",
        "TWFE 与 Callaway-Sant'Anna 对照（tables/did_aggregates.csv 中的行）",
    ),
    "did.cs_simple": ("Callaway-Sant'Anna (simple ATT)", "Callaway-Sant'Anna（简单 ATT）"),
    "did.twfe_fe": ("TWFE (firm + year FE)", "TWFE（企业 + 年份固定效应）"),
    "did.note": (
        "Callaway and Sant'Anna (2021) group-time ATTs (did.method: doubly robust "
        "(Sant'Anna and Zhao, 2020) by default, or IPW or outcome regression), against "
        "never- or not-yet-adopting cities; each ATT(g, t) compares the change from the "
        "base year in the cohort's firms with that of the comparison firms observed in both "
        "years. Standard errors cluster the influence functions by the cluster role (city). "
        "With did.inference: small_cluster (the default) they are bias-reduced for cohorts "
        "of few, unequal cities (CR2, Bell and McCaffrey 2002), intervals use Student t "
        "with Satterthwaite degrees of freedom (the df column: small when a few cities "
        "carry the estimate), bands and the pre-trend test are Bonferroni over the "
        "event times; with did.inference: asymptotic (as R did) they are normal, with "
        "multiplier-bootstrap bands and a joint Wald pre-trend test against F(q, G - 1). "
        "The aggregations weight cohorts by their size; did_dropped counts every firm-year "
        "and every cohort firm left out, by reason. An interval is printed only if it held "
        "its level on vaer's synthetic panel in the chosen mode; the inference column says "
        "why one is blank (did.unvalidated_inference prints it). TWFE: firm and year fixed "
        "effects (pyfixest), errors clustered by the cluster role with fixest's small-sample "
        "correction, t(G - 1); its event study and Sun-Abraham's (Sun and Abraham, 2021; "
        "never-treated comparisons, or the last-treated cohort before it adopts) use the "
        "same errors. TWFE's and Sun-Abraham's intervals have not been checked on the "
        "synthetic panel, so they are withheld by default. dml_did (did.estimators) "
        "estimates the same cells with the orthogonal doubly robust score and the run's "
        "machine-learning nuisances cross-fitted over folds of cities (Chang, 2020); its "
        "small-cluster intervals held their level on simulated panels "
        "(benchmarks/RESULTS.md, dml_did_validity) and are printed, its asymptotic ones "
        "are withheld. The Goodman-Bacon (2021) "
        "decomposition uses the firms observed in every year (did_dropped counts the "
        "others).",
        "Callaway 与 Sant'Anna（2021）的组-时间 ATT（did.method：默认为双重稳健（Sant'Anna 与 Zhao，"
        "2020），也可用 IPW 或结果回归），以从未实施或尚未实施政策的城市为对照；每个 ATT(g, t) 将该批次"
        "企业相对基期的变化与两年均被观测到的对照企业的变化相比较。标准误将影响函数按聚类变量（城市）聚类。"
        "在 did.inference: small_cluster（默认）下，标准误针对城市少且规模不均的批次做偏差修正（CR2，"
        "Bell 与 McCaffrey 2002），区间使用 Satterthwaite 自由度的 t 分布（df 列：少数城市主导估计时"
        "自由度很小），置信带与前趋势检验对事件时间做 Bonferroni 校正；在 did.inference: asymptotic"
        "（与 R 的 did 相同）下使用正态分布、乘数自助法置信带，以及以 F(q, G - 1) 为参照的联合 Wald "
        "前趋势检验。加总按批次规模加权；did_dropped 按原因统计每个被剔除的企业-年和批次企业。只有在"
        "所选模式下于 vaer 合成面板上达到名义水平的区间才会给出；推断列说明区间为空的原因"
        "（did.unvalidated_inference 可强制给出）。TWFE：企业与年份固定效应（pyfixest），误差按聚类"
        "变量聚类并采用 fixest 的小样本修正，t(G - 1)；其事件研究与 Sun-Abraham（Sun 与 Abraham，"
        "2021；以从未处理者或最后处理批次在实施前为对照）使用相同的误差。TWFE 与 Sun-Abraham 的区间"
        "尚未在合成面板上检验，因此默认不给出。dml_did（did.estimators）以正交双重稳健得分估计"
        "同样的 ATT(g, t)，其机器学习辅助模型在按城市划分的折上交叉拟合（Chang，2020）；其小聚类"
        "区间在模拟面板上达到了名义水平（benchmarks/RESULTS.md，dml_did_validity），因此给出，"
        "渐近区间则不给出。Goodman-Bacon（2021）分解使用每年都被观测到的企业"
        "（did_dropped 统计其余企业）。",
    ),
    "honest.title": (
        "Sensitivity of the event study to parallel-trends violations (honest DiD)",
        "事件研究对平行趋势违背的敏感性（honest DiD）",
    ),
    "honest.caption": (
        "Robust 95% intervals (did.alpha) for the average post-adoption effect as the "
        "allowed violation of parallel trends grows (blue), beside the usual interval that "
        "assumes none (red). Relative magnitudes: the trend difference may change after "
        "adoption by up to Mbar times its largest change before; smoothness: its slope may "
        "change by up to M per year. The dashed line is the breakdown value, the smallest "
        "bound at which the interval includes zero.",
        "随着允许的平行趋势违背增大，实施后平均效应的稳健 95% 区间（did.alpha，蓝色），旁边为假定无"
        "违背的常规区间（红色）。相对幅度：实施后趋势差异的变化最多为实施前最大变化的 Mbar 倍；"
        "平滑性：其斜率每年最多变化 M。虚线为临界值，即区间开始包含零的最小界。",
    ),
    "honest.note": (
        "Rambachan and Roth (2023), on the Callaway-Sant'Anna event study with a universal "
        "base period and its city-clustered covariance: conditional-least-favourable hybrid "
        "confidence sets (Andrews, Roth and Pakes) under relative magnitudes, optimal "
        "fixed-length intervals (Armstrong and Kolesar) under smoothness, as R HonestDiD "
        "computes them, with normal critical values, except that with small-cluster "
        "inference the smoothness intervals use a folded Student t with the Satterthwaite "
        "degrees of freedom of their estimator (did.honest.smoothness_critical; the original "
        "rows keep normal ones, so they can be a little narrower than the small-cluster t "
        "intervals of did_aggregates). "
        "honest_did has every post event time and their average; honest_did_breakdown the "
        "breakdown value of each.",
        "Rambachan 与 Roth（2023），基于采用统一基期的 Callaway-Sant'Anna 事件研究及其城市聚类协方差："
        "相对幅度下为条件最不利混合置信集（Andrews、Roth 与 Pakes），平滑性下为最优固定长度区间"
        "（Armstrong 与 Kolesar），与 R HonestDiD 的计算相同，采用正态临界值；但在小聚类推断下，平滑性"
        "区间采用以其估计量的 Satterthwaite 自由度为参数的折叠 Student t 临界值"
        "（did.honest.smoothness_critical；原始行仍用正态临界值，因此可能比 did_aggregates 的小聚类 t "
        "区间略窄）。honest_did 包含每个实施后事件时间及其平均；"
        "honest_did_breakdown 为各自的临界值。",
    ),
    "did_catt.title": (
        "Which firms gain from the policy, and through which channel (CATT)",
        "哪些企业从政策中获益、通过哪些渠道（处理组条件平均处理效应 CATT）",
    ),
    "did_catt.caption": (
        "Share of the variation of the policy's effect across treated firms (CATT) carried "
        "by each mechanism channel; intervals where printed.",
        "各机制渠道在政策效应跨处理企业差异（CATT）中所占的份额；给出区间处为区间。",
    ),
    "did_catt.note": (
        "Each firm's doubly robust DiD score of its average effect over the years since its "
        "city adopted (Sant'Anna-Zhao with never-treated comparison firms; their mean is the "
        "group-aggregated ATT), divided by its estimated probability of treatment, is fitted "
        "on the pre-period covariates by a weighted generalized random forest, cross-fitted "
        "over three folds of cities with the nuisances cross-fitted over the same folds, so "
        "that no firm's effect or test score comes from a model that saw its city "
        "(tables/did_catt.csv, per firm). did_catt_tests: the calibration test (CR2, "
        "one-sided) and RATE (AUTOC, Qini; city bootstrap, t(G-1)) of those effects, within "
        "folds. did_channels: SHAP values of the effect model refitted on each fold, every "
        "firm explained by the two models that never saw its city, summed into the "
        "mechanism channels, shares as for the cross-sectional effect (a forest's share "
        "intervals are withheld unless attribution.smoothed_share_intervals). "
        "did_mechanisms: the Callaway-Sant'Anna ATT (group aggregation) of the policy on "
        "each mediator, clustered by city.",
        "每家企业在其所在城市实施政策以来各年平均效应的双重稳健 DiD 得分（Sant'Anna-Zhao，以从未处理"
        "企业为对照；其均值即按批次加总的 ATT）除以其被处理的估计概率后，由加权广义随机森林对政策前"
        "协变量进行拟合；模型与辅助模型均在三组城市折叠上交叉拟合，因此任何企业的效应或检验得分都不"
        "来自见过其所在城市的模型（tables/did_catt.csv，逐企业）。did_catt_tests：这些效应的校准检验"
        "（CR2，单侧）与 RATE（AUTOC、Qini；城市自助法，t(G-1)），在折叠内计算。did_channels：在各"
        "折叠上重新拟合的效应模型的 SHAP 值，每家企业由两个从未见过其所在城市的模型解释，按机制渠道"
        "加总，份额的计算与横截面效应相同（森林的份额区间默认不给出，除非设置 "
        "attribution.smoothed_share_intervals）。did_mechanisms：政策对各中介变量的 "
        "Callaway-Sant'Anna ATT（按批次加总），按城市聚类。",
    ),
    "did_types.title": (
        "Effects of the policy by firm type (staggered difference-in-differences)",
        "按企业类型的政策效应（交错双重差分）",
    ),
    "did_types.caption": (
        "Average effect on the treated firms of each firm type by years since their city "
        "adopted the policy (Callaway-Sant'Anna by type), one panel per type level on a "
        "common scale; bars are pointwise intervals where printed. Each row quotes the test "
        "that the levels' overall event-study effects are equal.",
        "各类处理企业按所在城市实施政策后年数划分的平均效应（分类型的 Callaway-Sant'Anna），"
        "每个类型水平一个子图，纵轴刻度相同；给出区间处误差线为逐点区间。每行引用了各水平总体事件研究"
        "效应相等的检验。",
    ),
    "did_types.overall_view": (
        "Overall effect by firm type (simple and event-study aggregations; rows of "
        "tables/did_types.csv)",
        "按企业类型的总体效应（简单加总与事件研究加总；tables/did_types.csv 中的行）",
    ),
    "did_types.equality_view": (
        "Are the effects equal across firm types? (overall aggregates; rows of "
        "tables/did_type_tests.csv)",
        "各类企业的效应是否相等？（总体加总；tables/did_type_tests.csv 中的行）",
    ),
    "did_types.note": (
        "For each firm-type dimension and level, ATT(g, t) of that level's firms: the "
        "level's mean of the doubly robust DiD terms, each arm normalised within the level, "
        "with the level's comparison firms reweighted by nuisance models that include the "
        "type (so a type's untreated trend is compared with its own type's); aggregated "
        "like the overall ATT with the level's own cohort sizes. Standard errors as for the "
        "overall ATT (city-clustered influence functions, CR2 by arm within the level, "
        "Satterthwaite t). p_adj is Holm over the levels of a dimension, p_romano_wolf "
        "Romano-Wolf, the band holds for all levels at once. did_type_tests: per aggregation "
        "and key, the Wald F test that the levels are equal (Hotelling scaling with "
        "small-cluster degrees of freedom) and every pairwise difference. Rows with "
        "estimator dml_did take the same level means of dml_did's orthogonal scores, with "
        "the machine-learning nuisances cross-fitted over folds of cities on the covariates "
        "and every dimension's type indicators.",
        "对每个企业类型维度及水平，计算该水平企业的 ATT(g, t)：该水平内双重稳健 DiD 项的均值，各组在"
        "水平内归一化，对照企业用包含类型的辅助模型重新加权（使某类企业的未处理趋势与同类企业比较）；"
        "按该水平自身的批次规模像总体 ATT 一样加总。标准误与总体 ATT 相同（城市聚类影响函数，水平内"
        "按组 CR2，Satterthwaite t）。p_adj 为维度内各水平的 Holm 调整，p_romano_wolf 为 "
        "Romano-Wolf 调整，置信带同时覆盖所有水平。did_type_tests：对每种加总与键，给出各水平相等的 "
        "Wald F 检验（Hotelling 缩放，小聚类自由度）及所有两两差异。estimator 为 dml_did 的行对 "
        "dml_did 的正交得分取同样的水平均值，其机器学习辅助模型以协变量和各维度的类型指示变量为特征，"
        "在按城市划分的折上交叉拟合。",
    ),
    "robustness.title": ("Robustness and sensitivity", "稳健性与敏感性"),
    "other.title": ("Other tables", "其他表格"),
    # --- figures
    "fig.firms": ("firms", "企业数"),
    "fig.ate": ("ATE", "ATE"),
    "fig.cate_x": (
        "effect of {treatment} on {outcome} (tau_hat)",
        "{treatment}对{outcome}的效应（tau_hat）",
    ),
    "fig.treatment_named": ("{treatment} (treatment)", "{treatment}（处理变量）"),
    "fig.treatment_title": ("Treatment distribution", "处理变量的分布"),
    "fig.treatment_pred": (
        "predicted treatment E[T | X, W] (cross-fitted)",
        "处理变量预测值 E[T | X, W]（交叉拟合）",
    ),
    "fig.overlap_title": ("Overlap: T given the features", "重叠：给定特征时的 T"),
    "fig.share_x": ("share of heterogeneity (% of mean |SHAP|)", "异质性份额（平均 |SHAP| 的 %）"),
    "fig.heatmap_title": ("Channel contributions by firm type", "各类企业的渠道贡献"),
    "fig.gate_x": (
        "group average effect of {treatment} on {outcome} (95% CI)",
        "{treatment}对{outcome}的组平均效应（95% 置信区间）",
    ),
    "fig.toc_x": (
        "share of firms treated first, by predicted effect (q)",
        "按预测效应优先处理的企业份额（q）",
    ),
    "fig.toc_y": ("TOC(q): gain over random", "TOC(q)：相对随机的增益"),
    "fig.refit_x": (
        "re-estimated effect of {treatment} (95% CI); red = flagged by its test",
        "{treatment}效应的重新估计（95% 置信区间）；红色 = 被检验标记",
    ),
    "fig.reference": ("reference", "参照值"),
    "fig.channel_share_x": (
        "share of the variance of the channels' SHAP contributions (95% interval)",
        "各渠道 SHAP 贡献方差中的份额（95% 区间）",
    ),
    "fig.beeswarm_x": (
        "cluster-honest SHAP value of tau_hat ({estimator})",
        "tau_hat 的聚类诚实 SHAP 值（{estimator}）",
    ),
    "fig.low": ("low", "低"),
    "fig.high": ("high", "高"),
    "fig.feature_value": ("feature value", "特征值"),
    "fig.shap_value": ("SHAP value", "SHAP 值"),
    "fig.dependence_title": (
        "Dependence of tau_hat on the top proxies ({estimator})",
        "tau_hat 对主要代理变量的依赖（{estimator}）",
    ),
    "fig.channel_share": ("channel share", "渠道份额"),
    "fig.type_share_title": (
        "Channel shares by firm type ({estimator})",
        "各类企业的渠道份额（{estimator}）",
    ),
    # --- figures of the staggered difference-in-differences
    "did.fig.sa": ("Sun-Abraham", "Sun-Abraham"),
    "did.fig.twfe": ("TWFE leads and lags", "TWFE 前导与滞后项"),
    "did.fig.dml": ("DML DiD (cross-fitted ML nuisances)", "DML DiD（交叉拟合的机器学习辅助模型）"),
    "did.fig.band": ("uniform band", "一致置信带"),
    "did.fig.before": ("before adoption", "实施前"),
    "did.fig.after": ("after", "实施后"),
    "did.fig.pointwise": (" (pointwise CI)", "（逐点置信区间）"),
    "did.fig.event_time": (
        "years since the city adopted the policy (event time)",
        "城市实施政策后的年数（事件时间）",
    ),
    "did.fig.att_on": ("ATT on {outcome}", "对{outcome}的 ATT"),
    "did.fig.event_study": ("Event study", "事件研究"),
    "did.fig.event_study_cs": (
        "Event study (Callaway-Sant'Anna)",
        "事件研究（Callaway-Sant'Anna）",
    ),
    "did.fig.withheld": (
        ": point estimates; intervals withheld (see the table)",
        "：点估计；区间不予给出（见表）",
    ),
    "did.fig.bacon_never": ("treated vs never treated", "处理组 vs 从未处理组"),
    "did.fig.bacon_earlier": (
        "earlier vs later treated (not yet treated control)",
        "较早处理 vs 较晚处理（以尚未处理者为对照）",
    ),
    "did.fig.bacon_later": (
        "later vs earlier treated (already-treated control)",
        "较晚处理 vs 较早处理（以已处理者为对照）",
    ),
    "did.fig.twfe_coef": ("TWFE coefficient ({value})", "TWFE 系数（{value}）"),
    "did.fig.bacon_mean": (
        "weighted mean of the 2x2s, balanced subpanel ({value})",
        "2x2 比较的加权平均，平衡子面板（{value}）",
    ),
    "did.fig.bacon_x": ("weight in the TWFE coefficient", "在 TWFE 系数中的权重"),
    "did.fig.bacon_y": ("2x2 DiD estimate", "2x2 DiD 估计值"),
    "did.fig.bacon_title": (
        "Goodman-Bacon decomposition of the TWFE coefficient",
        "TWFE 系数的 Goodman-Bacon 分解",
    ),
    "did.fig.year": ("year", "年份"),
    "did.fig.cohort": ("cohort (adoption year)", "批次（实施年份）"),
    "did.fig.att_gt_starred": (
        "ATT(g, t): * = interval excludes zero",
        "ATT(g, t)：* = 区间不含零",
    ),
    "did.fig.since": ("years since adoption", "实施后年数"),
    "did.fig.firms": (" ({n} firms)", "（{n} 家企业）"),
    "did.fig.by_type": (
        "Event study by firm type (Callaway-Sant'Anna, ATT on {outcome})",
        "按企业类型的事件研究（Callaway-Sant'Anna，对{outcome}的 ATT）",
    ),
    "did.fig.levels_equal": ("levels equal (overall): p = {p}", "各水平相等（总体）：p = {p}"),
    "honest.fig.rm": ("Relative magnitudes", "相对幅度"),
    "honest.fig.rm_x": (
        "Mbar (post-period trend changes / largest pre-period one)",
        "Mbar（实施后趋势变化 / 实施前最大变化）",
    ),
    "honest.fig.sd": ("Smoothness", "平滑性"),
    "honest.fig.sd_x": (
        "M (bound on the trend's second differences)",
        "M（趋势二阶差分的上界）",
    ),
    "honest.fig.robust": ("robust CI", "稳健置信区间"),
    "honest.fig.original": ("original CI (parallel trends)", "原始置信区间（平行趋势）"),
    "honest.fig.breakdown": ("breakdown ({value})", "临界值（{value}）"),
    "honest.fig.event_time": ("event time", "事件时间"),
    "honest.fig.effect": ("effect", "效应"),
    # --- LaTeX
    "latex.star_note": (
        r"Standard errors in parentheses. * $p<0.10$, ** $p<0.05$, *** $p<0.01$.",
        r"括号内为标准误。* $p<0.10$，** $p<0.05$，*** $p<0.01$。",
    ),
    "latex.notes": ("Notes:", "注："),
    "latex.n_firms": ("N (firms)", "N（企业）"),
    "latex.n_firm_years": ("N (firm-years)", "N（企业-年）"),
    "latex.clusters_cities": ("Clusters (cities)", "聚类（城市）"),
    "latex.estimate": ("Estimate", "估计值"),
    "latex.ate.caption": (
        "Average effect of {treatment} on {outcome}",
        "{treatment}对{outcome}的平均效应",
    ),
    "latex.ate.notes": (
        "Doubly robust scores averaged over firms; standard errors clustered by the cluster role.",
        "对企业的双重稳健得分取平均；标准误按聚类变量聚类。",
    ),
    "latex.gate.caption": (
        "Group average effects by firm type (GATEs)",
        "按企业类型的组平均效应（GATE）",
    ),
    "latex.gate.notes": (
        "Average of doubly robust scores within each firm type.",
        "每类企业内双重稳健得分的平均值。",
    ),
    "latex.clan.caption": (
        "Classification analysis (CLAN): most minus least affected firms",
        "分类分析（CLAN）：受影响最大与最小企业之差",
    ),
    "latex.clan.notes": (
        "Difference in the mean of each characteristic between the firms in the top and "
        "the bottom group of predicted effects (Chernozhukov, Demirer, Duflo and "
        "Fernandez-Val).",
        "预测效应最高组与最低组企业在各特征均值上的差异（Chernozhukov、Demirer、Duflo 与 "
        "Fernandez-Val）。",
    ),
    "latex.mechanisms.caption": (
        "Mechanism tests: effect of {treatment} on each mediator",
        "机制检验：{treatment}对各中介变量的效应",
    ),
    "latex.mechanisms.notes": (
        "Double machine learning estimate of the effect of {treatment} on each mediator.",
        "{treatment}对各中介变量效应的双重机器学习估计。",
    ),
    "latex.robustness.caption": ("Robustness checks", "稳健性检验"),
    "latex.robustness.notes": (
        "Refutation tests: each row re-estimates the average effect under the named change.",
        "反驳检验：每一行在所列改动下重新估计平均效应。",
    ),
    "latex.event_study.caption": (
        "Event study: effect of the policy by years since adoption",
        "事件研究：按实施后年数划分的政策效应",
    ),
    "latex.event_study.notes": (
        "Rows: years since the firm's city adopted the policy (event time). CS: "
        "Callaway-Sant'Anna (2021) dynamic aggregation of ATT(g,t); SA: Sun-Abraham (2021) "
        "interaction-weighted estimator (cohort x event-time interactions with firm and year "
        "fixed effects, never-treated or last-treated comparisons); TWFE: event-time dummies "
        "pooled over cohorts with firm and year fixed effects. SA and TWFE are normalised to 0 "
        "at event time -1. Standard errors are clustered by city (the cluster role); a dash "
        "marks standard errors withheld because they did not hold their level on vaer's "
        "synthetic panel (did.unvalidated_inference prints them).",
        "行：企业所在城市实施政策后的年数（事件时间）。CS：Callaway-Sant'Anna（2021）对 ATT(g,t) 的"
        "动态加总；SA：Sun-Abraham（2021）交互加权估计量（批次 × 事件时间交互项，含企业与年份固定效应，"
        "以从未处理或最后处理者为对照）；TWFE：跨批次合并的事件时间虚拟变量，含企业与年份固定效应。"
        "SA 与 TWFE 在事件时间 -1 处归一化为 0。标准误按城市（聚类变量）聚类；短横线表示因在 vaer "
        "合成面板上未达到名义水平而不给出的标准误（did.unvalidated_inference 可强制给出）。",
    ),
    # --- heterogeneity partials
    "gates.heading": ("Effects by firm type (GATEs)", "按企业类型的效应（GATE）"),
    "gates.caption": (
        "Group average effects with 95% cluster-robust CIs, from the means of the doubly "
        "robust scores within each firm type; dashed lines are each estimator's average effect.",
        "组平均效应及 95% 聚类稳健置信区间，由每类企业内双重稳健得分的均值得到；虚线为各估计量的平均效应。",
    ),
    "gates.equal_q": ("Are the effects equal across levels?", "各水平的效应是否相等？"),
    "gates.pairwise": ("Pairwise differences between levels", "各水平之间的两两差异"),
    "gates.note": (
        "Standard errors cluster by {cluster} (CR2, the bias-reduced cluster-robust variance "
        "of Bell and McCaffrey) and use the joint covariance of all levels (clusters contain "
        "firms of several types). With a finite number of clusters every test uses a "
        "small-sample reference distribution: each GATE and difference is a t-test with the "
        "Bell–McCaffrey degrees of freedom (df, about the number of clusters with firms of the "
        "level minus one, so a type found in a few cities gets few df and wide intervals), and "
        "equality is Pustejovsky and Tipton's HTZ F-test (the Wald statistic scaled as "
        "Hotelling's T²) with (levels − 1, df) degrees of freedom. Holm and Romano-Wolf "
        "p-values test GATE = 0 and adjust within each dimension; the joint band covers all "
        "levels of a dimension at once. Both use draws of the t-statistics from a multivariate "
        "t with each level's df. Stars on differences use Holm-adjusted p-values. The equality "
        "tests compare scores across fixed firm types and do not use the predicted effects; "
        "under a constant effect they rejected at about their nominal level "
        "(benchmarks/RESULTS.md, heterogeneity_size). Tests of a single GATE's level inherit "
        "the reliability of the average effect's SE.",
        "标准误按{cluster}聚类（CR2，即 Bell 与 McCaffrey 的偏差修正聚类稳健方差），并使用所有水平的"
        "联合协方差（一个聚类内有多种类型的企业）。聚类数有限时，每个检验都采用小样本参照分布：每个 GATE "
        "及差异为采用 Bell–McCaffrey 自由度的 t 检验（df 约为含该水平企业的聚类数减一，因此只出现在少数"
        "城市的类型自由度少、区间宽）；相等性检验为 Pustejovsky 与 Tipton 的 HTZ F 检验（按 Hotelling T² "
        "缩放的 Wald 统计量），自由度为（水平数 − 1, df）。Holm 与 Romano-Wolf p 值检验 GATE = 0，并在每个"
        "维度内调整；联合置信带同时覆盖一个维度的所有水平。二者都从各水平自由度的多元 t 分布中抽取 t 统计量。"
        "差异上的星号使用 Holm 调整后的 p 值。相等性检验比较固定企业类型之间的得分，不使用预测效应；在效应"
        "恒定时其拒绝率约等于名义水平（benchmarks/RESULTS.md，heterogeneity_size）。单个 GATE 水平的检验"
        "与平均效应标准误同样可靠。",
    ),
    "gates.firm": ("firm", "企业"),
    "sorted.heading": ("Sorted GATES and CLAN", "排序 GATES 与 CLAN"),
    "sorted.note": (
        "Firms are grouped by quantiles of their out-of-sample predicted effect (group 1 "
        "lowest); each group's effect is the mean doubly robust score with a cluster-robust SE "
        "(Chernozhukov, Demirer, Duflo and Fernández-Val). Effects that rise from the bottom "
        "to the top group, and a significant top − bottom difference, mean the predictions "
        "find real heterogeneity. CR2 standard errors, intervals from Student's t with the "
        "Bell–McCaffrey df.",
        "按样本外预测效应的分位数对企业分组（第 1 组最低）；每组效应为双重稳健得分的均值，采用聚类稳健标准误"
        "（Chernozhukov、Demirer、Duflo 与 Fernández-Val）。效应从最低组到最高组递增、且最高组 − 最低组"
        "差异显著，说明预测捕捉到了真实的异质性。CR2 标准误，区间采用 Bell–McCaffrey 自由度的 t 分布。",
    ),
    "sorted.withheld": (
        "Intervals and significance are not shown for these groups:",
        "这些组不给出区间与显著性：",
    ),
    "clan.heading": (
        "Who is in the most and least affected groups (CLAN)",
        "受影响最大与最小的组中是哪些企业（CLAN）",
    ),
    "clan.note": (
        "CLAN compares characteristics, not effects: a difference says which firms the "
        "ranking puts at the top, and is no test of heterogeneity (it can be significant "
        "under a constant effect whenever the predictions vary with the characteristic).",
        "CLAN 比较的是特征而非效应：差异说明排序把哪些企业排在前面，并不是异质性检验（只要预测随该特征变化，"
        "即使效应恒定它也可能显著）。",
    ),
    "calibration.heading": (
        "Calibration test and best linear projection",
        "校准检验与最佳线性投影",
    ),
    "calibration.note": (
        "As grf's test_calibration: cluster-robust regression of the doubly robust scores on "
        "the mean and the differential (centred) out-of-sample prediction. A mean coefficient "
        "near 1 says the average is right; a differential coefficient near 1 says the "
        'predicted heterogeneity is well calibrated, and significantly above 0 rejects "no '
        'heterogeneity". CR2 standard errors; p-values are one-sided (coefficient > 0), from '
        "Student's t with the Bell–McCaffrey df.",
        "与 grf 的 test_calibration 相同：双重稳健得分对均值预测和差异化（中心化）样本外预测做聚类稳健回归。"
        "均值系数接近 1 说明平均效应正确；差异系数接近 1 说明预测的异质性校准良好，显著大于 0 则拒绝“无异质性”。"
        "CR2 标准误；p 值为单侧（系数 > 0），来自 Bell–McCaffrey 自由度的 t 分布。",
    ),
    "calibration.withheld": (
        "The differential coefficient's interval and p-value are not shown:",
        "差异系数的区间与 p 值不予给出：",
    ),
    "blp.heading": ("Best linear projection of the effect", "效应的最佳线性投影"),
    "blp.note": (
        "As grf's best_linear_projection: the doubly robust scores regressed on an intercept "
        "and the covariates, CR2 cluster-robust SEs and t-tests with Bell–McCaffrey df; a "
        "linear summary of how the effect moves with each covariate, valid even when the "
        "effect is not linear. The last row is the joint F-test (HTZ) that every slope is "
        "zero: an omnibus test of heterogeneity along these covariates that does not use the "
        "predicted effects.",
        "与 grf 的 best_linear_projection 相同：双重稳健得分对截距与协变量回归，CR2 聚类稳健标准误及 "
        "Bell–McCaffrey 自由度的 t 检验；这是效应随各协变量变化的线性概括，即使效应并非线性也有效。最后一行为"
        "所有斜率均为零的联合 F 检验（HTZ）：沿这些协变量的异质性综合检验，不使用预测效应。",
    ),
    "rate.heading": (
        "Targeting by predicted effect: RATE and the TOC curve",
        "按预测效应定向：RATE 与 TOC 曲线",
    ),
    "rate.caption": (
        "TOC(q): the average effect among the share q of firms with the highest predicted "
        "effect, minus the average effect of all firms, with a pointwise 95% "
        "cluster-bootstrap band{withheld}.",
        "TOC(q)：预测效应最高的 q 比例企业的平均效应减去全部企业的平均效应，附逐点 95% 聚类自助法置信带{withheld}。",
    ),
    "rate.caption_withheld": (" (not drawn: see below)", "（未绘出：见下文）"),
    "rate.note": (
        "AUTOC is the area under the TOC curve, Qini the q-weighted area (Yadlowsky et al.); "
        "both from doubly robust scores, so they apply to a continuous treatment "
        "({treatment}). SEs from a bootstrap over clusters (scaled by G/(G−1)), tests and "
        "intervals from Student's t with G−1 df. A positive, significant RATE (one-sided test, "
        "RATE > 0) means the estimator's ranking finds firms that gain more.",
        "AUTOC 为 TOC 曲线下的面积，Qini 为按 q 加权的面积（Yadlowsky 等）；二者都基于双重稳健得分，因此"
        "适用于连续处理变量（{treatment}）。标准误来自对聚类的自助法（按 G/(G−1) 缩放），检验与区间采用自由度"
        "为 G−1 的 t 分布。RATE 为正且显著（单侧检验，RATE > 0）说明估计量的排序能找出获益更多的企业。",
    ),
    "rate.withheld": ("Intervals and p-values are not shown:", "不给出区间与 p 值："),
    "policy.heading": (
        "Which firms gain most: depth-2 policy tree",
        "哪些企业获益最多：深度为 2 的政策树",
    ),
    "policy.note": (
        "The tree of depth at most 2 over firm types (and chosen modifiers) that best "
        "separates firms whose gain from {treatment} exceeds the targeting cost (by default "
        "the average effect), found by exhaustive search on the doubly robust scores. By "
        "default the tree is grown on half of the clusters and each leaf's effect and "
        "cluster-robust (CR2) CI are estimated on the other half, with Student's t and the "
        "Bell–McCaffrey df (about the leaf's estimation cities minus one); a leaf with firms "
        "in a single city gets no interval.",
        "在企业类型（及选定的调节变量）上深度至多为 2、能最好地区分{treatment}带来的收益超过定向成本（默认为"
        "平均效应）的企业的树，通过对双重稳健得分的穷举搜索得到。默认在一半聚类上生长树，在另一半聚类上估计"
        "每片叶子的效应及聚类稳健（CR2）置信区间，采用 t 分布与 Bell–McCaffrey 自由度（约为该叶估计所用城市数"
        "减一）；企业只来自一个城市的叶子不给出区间。",
    ),
    "withheld.ranking": (
        "they rank or regress firms on the predicted effects, which share the nuisance "
        "models' errors with the doubly robust scores (and, for the forest, each city's "
        "prediction carries the other cities' scores); under a constant effect such tests "
        "rejected in up to a quarter of the draws at the 5% level, so a p-value here would "
        "not mean what it says (benchmarks/RESULTS.md, heterogeneity_size). The GATE equality "
        "F-tests and the BLP joint F-test do not use the predictions and are the tests of "
        "heterogeneity to report. Set heterogeneity.ranking_tests: true to show them anyway.",
        "它们按预测效应对企业排序或回归，而预测效应与双重稳健得分共享辅助模型的误差（对森林而言，每个城市的"
        "预测还带有其他城市的得分）；在效应恒定时，这类检验在 5% 水平上的拒绝率高达四分之一，因此这里的 p 值"
        "并不代表其字面含义（benchmarks/RESULTS.md，heterogeneity_size）。GATE 相等性 F 检验与 BLP 联合 F "
        "检验不使用预测，是应报告的异质性检验。设置 heterogeneity.ranking_tests: true 可强制显示。",
    ),
    # --- attribution and mechanisms partials
    "attribution.heading": (
        "Mechanism attribution (SHAP of the firm-level effect)",
        "机制归因（企业层面效应的 SHAP）",
    ),
    "attribution.intro": (
        "Each firm's estimated effect is split into contributions of its characteristics "
        "(SHAP values; one value per firm-type dimension, its one-hot levels summed); a "
        "channel's contribution is the sum over its proxies. The values are cluster-honest: "
        "the estimator's final stage is refitted on each of three folds of the cities, and "
        "every firm is explained by the two models fitted on the folds that do not hold its "
        "city; its SHAP value is their mean.",
        "每家企业的估计效应被分解为其各项特征的贡献（SHAP 值；每个企业类型维度一个值，为其独热水平之和）；"
        "渠道的贡献是其代理变量贡献之和。这些值是聚类诚实的：估计量的最后一阶段在城市的三个折上分别重新拟合，"
        "每家企业由不含其所在城市的两个折上拟合的模型解释；其 SHAP 值取二者的均值。",
    ),
    "attribution.share": (
        "A channel's <strong>share</strong> is its part of the variance of the channels' "
        "contributions across firms, Var(contribution of the channel) / sum over channels of "
        "Var(contribution). When the effect is additive across channels with independent "
        "proxies, this is the part of the firm-to-firm variation in the effect, among what "
        "the channels explain, that the channel explains. It is estimated from the products "
        "of the two independent explanations of each firm with a doubly robust correction "
        "from the firms' scores, so a channel without effect is estimated at about 0 "
        "(possibly slightly below) rather than at its noise. The 95% intervals (Fieller's, "
        "for a ratio, from city-clustered variances, clipped to [0, 1]) include the "
        "estimation error of the effect model; an interval that reaches 0 means the "
        "channel's contribution is not distinguishable from no heterogeneity at all "
        "(p-value: one-sided test of no variance). For a linear estimator the shares and "
        "their intervals describe the best linear projection of the effect on the modifiers, "
        "not the true effect's shares where the effect is not linear. For a forest the "
        "intervals are withheld by default: a forest smooths the effect towards its linear "
        "base, and on held-out designs with kinked and U-shaped effects its share intervals "
        "covered the true shares in only 66-82% of draws (the table's <em>interval</em> "
        "column and <code>attribution.smoothed_share_intervals</code>). Mean |SHAP| is "
        "descriptive only: estimation noise makes it positive for every channel.",
        "渠道的<strong>份额</strong>是它在各渠道贡献的企业间方差中所占的部分，即 Var(该渠道的贡献) / "
        "各渠道 Var(贡献) 之和。当效应在各渠道间可加且代理变量相互独立时，它就是在渠道所能解释的企业间效应"
        "变异中，该渠道所解释的部分。它由每家企业两个相互独立的解释之积估计，并以企业得分做双重稳健修正，"
        "因此无作用的渠道估计值约为 0（可能略低于 0），而不是其噪声水平。95% 区间（比值的 Fieller 区间，基于"
        "城市聚类方差，截断到 [0, 1]）包含了效应模型的估计误差；区间触及 0 说明该渠道的贡献与完全无异质性"
        "无法区分（p 值：无方差的单侧检验）。对线性估计量，份额及其区间描述的是效应对调节变量的最佳线性投影，"
        "效应非线性时并非真实效应的份额。对森林，区间默认不给出：森林会把效应向其线性基底平滑，在含折点与 U 形"
        "效应的留出设计上，其份额区间只在 66-82% 的抽样中覆盖真实份额（见表中 <em>interval</em> 列与 "
        "<code>attribution.smoothed_share_intervals</code>）。"
        "平均 |SHAP| 仅为描述性指标：估计噪声会使每个渠道的该值都为正。",
    ),
    "attribution.methods": (
        "linear: exact SHAP of each linear fold model; tree_surrogate: exact TreeSHAP of a "
        "LightGBM model distilled from each fold model's effect, whose R² to that effect on "
        "held-out firms is the fidelity (the lowest of the three fold models); permutation: "
        "shap's model-agnostic permutation explainer. Firms refitted on: summed over the "
        "three fold models.",
        "linear：每个线性折模型的精确 SHAP；tree_surrogate：从每个折模型的效应蒸馏出的 LightGBM 模型的"
        "精确 TreeSHAP，其在留出企业上对该效应的 R² 即保真度（取三个折模型中的最低值）；permutation：shap "
        "的模型无关置换解释器。重新拟合所用企业数：三个折模型之和。",
    ),
    "attribution.channel_caption": (
        "Share of each channel in the variance of the channels' contributions to the effect, "
        "with 95% intervals (where printed) that include the effect model's estimation error.",
        "各渠道在渠道对效应贡献的方差中的份额，95% 区间（如给出）包含效应模型的估计误差。",
    ),
    "attribution.withheld": (
        "withheld",
        "不给出",
    ),
    "attribution.beeswarm_caption": (
        "Cluster-honest SHAP values of the most important features, one dot per firm, "
        "coloured by the feature's value.",
        "最重要特征的聚类诚实 SHAP 值，每个点代表一家企业，颜色表示特征取值。",
    ),
    "attribution.dependence_caption": (
        "SHAP value against the proxy's value for the most important mechanism proxies.",
        "最重要的机制代理变量的 SHAP 值与其取值的关系。",
    ),
    "attribution.heatmap_caption": (
        "Channel shares within each firm-type level: each channel's part of the mean squared "
        "contribution within the level (tables/shap_by_type.csv has the intervals).",
        "每个企业类型水平内的渠道份额：各渠道在该水平内平均平方贡献中所占的部分（区间见 "
        "tables/shap_by_type.csv）。",
    ),
    "mechanisms.heading": (
        "Mechanism tests: does {treatment} move each channel?",
        "机制检验：{treatment}是否影响各渠道？",
    ),
    "mechanisms.intro": (
        "Double machine learning effect of one more unit of {treatment} on each mediator "
        "(partially linear model, cross-fitted nuisances on cluster-grouped folds, "
        "cluster-robust standard errors; the median over attribution.mechanisms.n_rep "
        "cross-fitting splits, by default three on up to 20,000 firms, its standard error "
        "including their spread).",
        "{treatment}每增加一个单位对各中介变量的双重机器学习效应（部分线性模型，在按聚类分组的折上交叉拟合"
        "辅助模型，聚类稳健标准误；取 attribution.mechanisms.n_rep 次交叉拟合划分的中位数"
        "（默认：不超过 20,000 家企业时为三次），其标准误计入各划分间的差异）。",
    ),
    "mechanisms.by_type": ("By firm type", "按企业类型"),
    # --- robustness partial
    "robustness.intro": (
        "Each check re-estimates the effect on modified data (nuisances and final stage "
        "refitted) and tests whether the refit agrees with what the model predicts: a "
        "placebo's effect is 0, a refit on part of the data or with an irrelevant control "
        "estimates the same effect as the run. Every check is a test at a stated level{alpha}: "
        "when the model is right it flags a departure in at most that share of runs (its "
        "false-alarm rate), its rows sharing that rate. A flagged check is evidence against "
        "the model at that level, not proof: with several checks, one may be flagged by chance.",
        "每项检验都在修改后的数据上重新估计效应（重新拟合辅助模型与最后一阶段），并检验重新估计是否与模型的"
        "预测一致：安慰剂的效应为 0，在部分数据上或加入无关控制变量后重新估计应得到与本次运行相同的效应。"
        "每项检验都是给定水平{alpha}下的检验：模型正确时，它至多在该比例的运行中标记偏离（误报率），同一检验的"
        "各行共享该比率。被标记的检验是在该水平上不利于模型的证据，而非证明：检验较多时，可能有一项因偶然被标记。",
    ),
    "robustness.none_flagged": (
        "None of the {n} checks is flagged at its level.",
        "{n} 项检验在各自水平上均未被标记。",
    ),
    "robustness.flagged": (
        "{flagged} of {n} checks flagged at their level:",
        "{n} 项检验中有 {flagged} 项在其水平上被标记：",
    ),
    "robustness.family_none": (
        "Taken together (Holm's adjustment across the {n} checks, which holds the chance "
        "that any check is flagged on a right model at {alpha}), the checks do not flag "
        "the model.",
        "综合来看（对 {n} 项检验作 Holm 调整，使模型正确时任一检验被标记的概率不超过 {alpha}），"
        "各项检验未标记该模型。",
    ),
    "robustness.family_flagged": (
        "Taken together (Holm's adjustment across the {n} checks, which holds the chance "
        "that any check is flagged on a right model at {alpha}), the model is flagged by: "
        "{checks}.",
        "综合来看（对 {n} 项检验作 Holm 调整，使模型正确时任一检验被标记的概率不超过 {alpha}），"
        "标记该模型的检验：{checks}。",
    ),
    "robustness.false_alarm": ("; false-alarm rate {rate}", "；误报率 {rate}"),
    "robustness.caption": (
        "Re-estimated effects with cluster-robust 95% CIs; the tick marks the value the rule "
        "compares with; red rows are flagged by their test.",
        "重新估计的效应及聚类稳健 95% 置信区间；刻度线标出规则所比较的值；红色行被其检验标记。",
    ),
    "robustness.consistent": ("consistent", "一致"),
    "robustness.flagged_at": ("flagged at {level}", "在 {level} 水平被标记"),
    "sensitivity.heading": ("Sensitivity to unobserved confounding", "对未观测混杂的敏感性"),
    "sensitivity.note": (
        "Bounds on the average effect if a hidden confounder explained a share c_y of the "
        "outcome's residual variance and a share c_d of the treatment's (Chernozhukov, "
        "Cinelli, Newey, Sharma and Syrgkanis, 2022), with correlation ρ = {rho} between the "
        'two. "As strong as X" rows use the strengths implied by dropping observed control '
        "X. The robustness value is the common strength c_y = c_d that would move the bound "
        "(or its CI) to zero.",
        "若一个隐藏混杂因素解释了结果残差方差的 c_y 份额和处理变量残差方差的 c_d 份额（Chernozhukov、"
        "Cinelli、Newey、Sharma 与 Syrgkanis，2022），二者相关系数为 ρ = {rho}，平均效应的界如表所示。"
        "“与 X 一样强”的行使用剔除已观测控制变量 X 所隐含的强度。稳健性值是使界（或其置信区间）移到零的共同"
        "强度 c_y = c_d。",
    ),
    # --- estimands of the ATE table (vaer.estimators.registry), shown in the report's language
    "estimand.ape": (
        "average partial effect of one more unit of {treatment}",
        "{treatment}每增加一个单位的平均偏效应",
    ),
    "estimand.ape_iv": (
        "average partial effect of one more unit of {treatment} (identified by the instrument)",
        "{treatment}每增加一个单位的平均偏效应（由工具变量识别）",
    ),
    "estimand.binary": (
        "average effect of high vs low {treatment} (high = {treatment} above its {where})",
        "{treatment}高与低相比的平均效应（高 = {treatment}高于其{where}）",
    ),
    "estimand.median": ("median", "中位数"),
    "estimand.top-tercile cut-off": ("top-tercile cut-off", "上三分位点"),
    # --- fixed values of result tables (columns of vaer.reporting.labels.VALUE_COLUMNS)
    "value.cluster-robust (DR scores)": ("cluster-robust (DR scores)", "聚类稳健（DR 得分）"),
    "value.robust (DR scores)": ("robust (DR scores)", "稳健（DR 得分）"),
    "value.target": ("target", "定向"),
    "value.do not target": ("do not target", "不定向"),
}
"""Key -> (English, Chinese)."""


@dataclass(frozen=True)
class Words:
    """The report's words in one language.

    Parameters
    ----------
    language : {"en", "zh"}
        English (default) or simplified Chinese.

    Raises
    ------
    ValueError
        On another language.
    """

    language: str = "en"

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise ValueError(
                f"`report.language` must be one of {list(LANGUAGES)}; got {self.language!r}"
            )

    @property
    def zh(self) -> bool:
        """Whether the words are Chinese."""
        return self.language == "zh"

    def __call__(self, key: str, **values: Any) -> str:
        """The entry ``key`` in this language, its ``{name}`` placeholders filled.

        Raises
        ------
        KeyError
            If ``key`` is not in :data:`WORDS` (a report bug, not a user error).
        """
        text = WORDS[key][LANGUAGES.index(self.language)]
        return text.format(**values) if values else text

    def markup(self, key: str, **values: Any) -> Markup:
        """The entry ``key`` as HTML: its own markup kept, the ``values`` escaped."""
        text = Markup(WORDS[key][LANGUAGES.index(self.language)])
        return text.format(**values) if values else text
