// hostPath volumes: a path on the node, checked against the volume's type
// before the pod's containers start, as upstream's hostPath plugin
// (pkg/volume/hostpath/host_path.go, checkType). DirectoryOrCreate and
// FileOrCreate make what is missing (a 0755 directory, an empty 0644 file);
// the other types only check; the empty type checks nothing.

import { chmod, mkdir, open, stat } from 'node:fs/promises';
import { VolumeSetUpError } from './payload.ts';

export async function checkHostPathType(path: string, type: string | undefined): Promise<void> {
  const info = await stat(path).catch(() => undefined);
  const fail = (what: string) => {
    throw new VolumeSetUpError(`hostPath type check failed: ${path} is not ${what}`);
  };
  switch (type ?? '') {
    case '':
      return;
    case 'DirectoryOrCreate':
      if (!info) {
        await mkdir(path, { recursive: true, mode: 0o755 });
        await chmod(path, 0o755);
        return;
      }
      if (!info.isDirectory()) fail('a directory');
      return;
    case 'Directory':
      if (!info?.isDirectory()) fail('a directory');
      return;
    case 'FileOrCreate':
      if (!info) {
        // The parent must exist: upstream creates the file only.
        const f = await open(path, 'a', 0o644).catch((err: Error) => {
          throw new VolumeSetUpError(`hostPath type check failed: ${path}: ${err.message}`);
        });
        await f.close();
        return;
      }
      if (!info.isFile()) fail('a file');
      return;
    case 'File':
      if (!info?.isFile()) fail('a file');
      return;
    case 'Socket':
      if (!info?.isSocket()) fail('a socket file');
      return;
    case 'CharDevice':
      if (!info?.isCharacterDevice()) fail('a character device');
      return;
    case 'BlockDevice':
      if (!info?.isBlockDevice()) fail('a block device');
      return;
    default:
      throw new VolumeSetUpError(`hostPath type check failed: unknown type ${type}`);
  }
}
