# The two commands of the README.
.PHONY: app test bench
app:   ## install (if needed) and start the app on http://127.0.0.1:8501
	bash scripts/app.sh
test:  ## install the test requirements and run the whole test suite
	bash scripts/test.sh
