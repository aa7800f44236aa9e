import { InitialSchema1732700000000 } from './1732700000000-initial-schema.js';
import { MeasurementHypertable1732700000001 } from './1732700000001-measurement-hypertable.js';
import { CommandDueNotify1732700000002 } from './1732700000002-command-due-notify.js';

// Listed explicitly (not globbed) so the compiled app and the tests load exactly these, in order.
export const migrations = [InitialSchema1732700000000, MeasurementHypertable1732700000001, CommandDueNotify1732700000002];
