export { createBackward } from './create-backward.ts'
export { idbStorage, memoryStorage } from './storage.ts'
export { BackwardError, isBackwardError } from '../shared/errors.ts'
export type {
  Backward,
  BackwardAction,
  BackwardChannel,
  BackwardEvents,
  BackwardLocks,
  BackwardStorage,
  CreateBackwardOptions,
  FailReason,
  LoginRequiredInfo,
  ReplayResult,
  StoredFile,
  StoredFormEntry,
} from './types.ts'
export type { BackwardErrorCode } from '../shared/errors.ts'
