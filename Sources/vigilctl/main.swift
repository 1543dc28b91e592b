print("vigilctl: not yet")
