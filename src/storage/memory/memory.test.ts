import { storeContract } from '../store.case.ts';
import { createMemoryStore } from './memory.ts';

storeContract('memory', { open: async () => createMemoryStore() });
