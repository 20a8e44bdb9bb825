/** Error for a job the model cannot run; `param` names the job field (rendered as a 400 by the service). */
export class JobInputError extends Error {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(message);
    this.name = 'JobInputError';
  }
}
