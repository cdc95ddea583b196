// The app actions shared by the list and the detail page: one call each; failures come back as
// a sentence for the page to show.
import * as api from '../lib/api';
import { store } from '../lib/store.svelte';

export type Action = 'start' | 'stop' | 'restart' | 'upgrade';

export async function run(action: Action, name: string): Promise<string | null> {
  try {
    if (action === 'start') await api.startApp(name);
    else if (action === 'stop') await api.stopApp(name);
    else if (action === 'restart') await api.restartApp(name);
    else await api.upgradeApp(name);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

// Whether Start and Stop make sense: the engine's rules (lib/statuses.ts), never spelled here.
export const canStart = (status: string) => store.statuses.canStart(status);
export const canStop = (status: string) => store.statuses.canStop(status);

/** Back an app up now: the archive made, or the failure's sentence; `onProgress` sees each step. */
export async function backup(name: string, onProgress: (s: api.JobState) => void): Promise<{ done: api.BackupInfo } | { error: string }> {
  try {
    const first = await api.startBackup(name);
    onProgress(first);
    return { done: (await api.waitJob(first, onProgress)) as api.BackupInfo };
  } catch (e) {
    return { error: (e as Error).message };
  }
}
