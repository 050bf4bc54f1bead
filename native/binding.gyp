{
  "targets": [
    {
      "target_name": "guild_spawn",
      "sources": ["spawn.c", "memory.cc"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "conditions": [["OS!='linux'", {"type": "none", "sources": []}]]
    }
  ]
}
