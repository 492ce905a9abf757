title = "x"

builder {
  name = "b",,
}
