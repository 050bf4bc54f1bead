/** The starter workflow `guild init` writes. It runs as written. */
export const STARTER_WORKFLOW = `# Guild workflow. Every key is described in the README ("Workflow file").
# Run it with: guild run guild.yaml
name: starter

# Memory Guild may give to agents at once. Default: 75% of the effective memory limit
# (the cgroup limit when one applies, else available memory). Sizes are 1024-based.
budget: 1GB

agents:
  worker:
    memory: 128MB     # expected peak RSS of one task's whole process tree
    limit: 256MB      # hard limit per task
    cpu: 0.25         # expected cores
    concurrency: 4    # at most this many worker tasks at once
    timeout: 1m
    retries: 1

tasks:
  - id: hello
    agent: worker
    run: node -e "console.log('hello from', process.env.GUILD_TASK_ID)"
  - id: list-files
    agent: worker
    priority: high    # critical | high | medium | low
    run: ls -la
  - id: goodbye
    agent: worker
    needs: [hello, list-files]
    env: { GREETING: goodbye }
    run: echo "$GREETING"
`;
