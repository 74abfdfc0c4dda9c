"""Running the scoring core without a broker: replay of a file of events, the rule files'
own tests, explain."""
