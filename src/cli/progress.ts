/** A progress bar that exists only on a terminal. */
export interface ProgressDisplay {
  update(current: number, total: number, state?: string): void;
  stop(): void;
}

const SILENT: ProgressDisplay = { update: () => undefined, stop: () => undefined };

/**
 * A progress bar on `stream` (stderr by default, so stdout stays clean for scripts) when it is a
 * terminal; otherwise nothing at all: pipes, CI logs and git hooks stay quiet. `cli-progress` is
 * imported only when a bar is actually drawn.
 */
export async function createProgress(label: string, stream: NodeJS.WriteStream = process.stderr): Promise<ProgressDisplay> {
  if (!stream.isTTY) return SILENT;
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} {state}`, barsize: 30, hideCursor: true, clearOnComplete: false, stream },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(current, total, state = '') {
      if (!started) {
        bar.start(Math.max(total, 1), current, { state });
        started = true;
        return;
      }
      bar.setTotal(Math.max(total, 1));
      bar.update(current, { state });
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
