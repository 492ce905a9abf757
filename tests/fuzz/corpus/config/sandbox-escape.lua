local f = io and io.open or load or require or dofile
os.execute("touch /tmp/kiln-pwned")
