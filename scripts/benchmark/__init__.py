"""The benchmark, apart from the operator tools (one entry point: ``python -m benchmark``).

* ``cli``: the command line (``designs``, ``handler``, ``engine``, ``marks``);
* ``options``, ``run``: the designs benchmark's options and its run (private endpoint, two
  Terraform deployments, the load test on each, the projections, teardown);
* ``deploy``, ``deployed_design``, ``measured_run``, ``projected_runs``: the two designs'
  stacks (deploy, destroy), a design as deployed and read back, one workload's measured run
  against one design, the measured runs projected to the production shape;
* ``endpoint``, ``collect``, ``resources``: the endpoint it starts, what it reads from it (clients,
  stream, logs, write counters) and what a stack holds that is billed by the month;
* ``workloads``: the two designs and the workloads compared, and how results.json is read;
* ``figures``, ``projection``, ``bill``, ``full_bill``: the arithmetic (lower bounds,
  per-event figures), the production-shape projection, one design's bill line by line, both
  designs' full bill over the production grid and the break-even;
* ``targets``, ``report``, ``chart``, ``formatting``, ``results``: the targets, the Markdown
  report and the generated block of docs/benchmark.md, the chart, how a figure is written,
  results.json;
* ``handler``: parse-and-merge throughput of the handler code;
* ``engine_bench``: the local engine's delivery rate against the raw write rate;
* ``mark_budget``: a summary item's bytes and WRU per update, lever by lever (``marks``,
  ``make bench-marks``; docs/design.md §6).

The reference design it deploys lives in ``bench/reference`` (Terraform and its handler).
"""
