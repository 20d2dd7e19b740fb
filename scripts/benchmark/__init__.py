"""The benchmark, apart from the operator tools (one entry point: ``python -m benchmark``).

* ``cli``: the command line (``designs``, ``handler``, ``engine``);
* ``options``, ``run``, ``deploy``, ``endpoint``, ``collect``: the designs benchmark's options,
  its run (private endpoint, two Terraform deployments, the load test on each), the endpoint it
  starts and what it reads from it;
* ``workloads``: the two designs and the workloads compared, and how results.json is read;
* ``figures``, ``targets``, ``report``, ``chart``, ``formatting``, ``results``: the arithmetic
  (lower bounds, per-event figures, the bill), the targets, the Markdown report and README
  table, the chart, how a figure is written, results.json;
* ``handler``: parse-and-merge throughput of the handler code;
* ``engine_bench``: the local engine's delivery rate against the raw write rate.

The reference design it deploys lives in ``bench/reference`` (Terraform and its handler).
"""
