"""The live operations view: complaint records folded from the output topics, and the counts
derived from them (backlog, running return items). Free of Kafka and HTTP, so that the faust
app (`consumers.aggregator`), the web server (`reporting.web`), tests and benchmarks share it.
"""
