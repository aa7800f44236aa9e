import { type CanActivate, type ExecutionContext, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { DeviceTokens, type DeviceClaims } from './device-token.js';

export type AuthenticatedRequest = FastifyRequest & { device: Readonly<DeviceClaims> };

/** Accepts `Authorization: Bearer <device token>`; 401 otherwise. */
@Injectable()
export class DeviceAuthGuard implements CanActivate {
  constructor(@Inject(DeviceTokens) private readonly tokens: DeviceTokens) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const header = request.headers.authorization;
    if (!header?.startsWith('Bearer ')) {
      throw new UnauthorizedException('missing device token: send "Authorization: Bearer <token>" from POST /v1/devices/login');
    }
    const claims = this.tokens.verify(header.slice(7).trim());
    if (!claims) throw new UnauthorizedException('invalid or expired device token: log in again with POST /v1/devices/login');
    request.device = claims;
    return true;
  }
}
