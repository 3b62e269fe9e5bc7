import type { Engine } from '../engine/engine.js';
import { NotFoundError } from '../errors.js';

/** GET `schedules` (with paused types and limited keys, the view's one read). */
export async function readSchedulesView(engine: Engine) {
  const [schedules, pausedTypes, limitedKeys] = await Promise.all([engine.schedules(), engine.pausedTypes(), engine.limitedKeys()]);
  return { schedules, pausedTypes, limitedKeys, at: Date.now() };
}

/** POST `schedules/NAME/(trigger|pause|resume)`: a run now; the schedule's type paused or resumed. */
export async function actOnSchedule(engine: Engine, name: string, action: string): Promise<unknown> {
  if (action === 'trigger') return { id: await engine.triggerSchedule(name) };
  if (action !== 'pause' && action !== 'resume') throw new NotFoundError(`${name}/${action}`, 'schedule action');
  const schedule = (await engine.schedules()).find((one) => one.name === name);
  if (!schedule) throw new NotFoundError(name, 'periodic schedule');
  await (action === 'pause' ? engine.pause(schedule.type) : engine.resume(schedule.type));
  return { [action === 'pause' ? 'paused' : 'resumed']: schedule.type };
}

/** POST `types/TYPE/(pause|resume)`: a task type held back, or let go, in every process. */
export async function actOnType(engine: Engine, type: string, action: string): Promise<unknown> {
  if (action === 'pause') await engine.pause(type);
  else if (action === 'resume') await engine.resume(type);
  else throw new NotFoundError(`${type}/${action}`, 'type action');
  return { [action === 'pause' ? 'paused' : 'resumed']: type };
}
